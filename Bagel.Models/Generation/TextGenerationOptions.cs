namespace Bagel.Models.Generation;

/// <summary>
/// Text decoding settings, under the reference's names (bagel.py <c>generate_text</c>, inferencer.py
/// <c>gen_text</c> / <c>interleave_inference</c>; the defaults are <c>interleave_inference</c>'s). The reference has
/// no top-k / top-p: sampling draws from <c>softmax(logits / temperature)</c> over the whole vocabulary.
/// </summary>
public sealed record TextGenerationOptions
{
    /// <summary><c>max_length</c> (<c>max_think_token_n</c> in the inferencer): decoding steps at most, the start token
    /// included, so at most <c>max_length − 1</c> tokens are returned. Default 1000.</summary>
    public int MaxLength { get; init; } = 1000;

    /// <summary><c>do_sample</c>: sample (true) or take the argmax (false). Default false.</summary>
    public bool DoSample { get; init; }

    /// <summary><c>temperature</c> (<c>text_temperature</c>): divides the logits before the softmax when sampling.
    /// Default 0.3.</summary>
    public double Temperature { get; init; } = 0.3;

    /// <summary>Reuse the KV cache of the prefix and of the tokens decoded so far (true, the reference's way), or
    /// recompute the whole sequence for every token (false; for the benchmark's comparison only). Default true.</summary>
    public bool UseKvCache { get; init; } = true;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        if (MaxLength < 1) throw new ArgumentException($"max_length {MaxLength} must be at least 1.");
        if (DoSample && !(Temperature > 0)) throw new ArgumentException($"temperature {Temperature} must be positive when sampling.");
    }
}

/// <summary>One decoding step, for observers (tests, progress). The logits are valid only during the callback.</summary>
/// <param name="Index">The step index, 0-based (step 0 reads the start token).</param>
/// <param name="InputToken">The token fed at this step.</param>
/// <param name="Logits">[V] float32 logits of the next token.</param>
/// <param name="NextToken">The token chosen.</param>
public sealed record TextStep(int Index, int InputToken, TorchSharp.torch.Tensor Logits, int NextToken);

/// <summary>One item of an interleaved input (the reference's <c>input_lists</c>): text or an image.</summary>
public abstract record InterleaveInput
{
    private protected InterleaveInput() { }

    /// <summary>A text item by token ids (without bos/eos).</summary>
    /// <param name="TokenIds">The token ids.</param>
    public sealed record Text(IReadOnlyList<int> TokenIds) : InterleaveInput;

    /// <summary>An image item.</summary>
    /// <param name="Pixels">The image after the VAE and ViT transforms.</param>
    public sealed record Image(ContextImage Pixels) : InterleaveInput;
}

/// <summary>The system prompts of the inferencer's "think" mode (inferencer.py), the exact strings, since the released model was trained with them.</summary>
public static class ThinkPrompts
{
    /// <summary><c>VLM_THINK_SYSTEM_PROMPT</c>: reasoning before an answer.</summary>
    public const string Understanding =
        "You should first think about the reasoning process in the mind and then provide the user with the answer. \n" +
        "The reasoning process is enclosed within <think> </think> tags, i.e. <think> reasoning process here </think> answer here";

    /// <summary><c>GEN_THINK_SYSTEM_PROMPT</c>: planning before an image.</summary>
    public const string Generation =
        "You should first think about the planning process in the mind and then generate the image. \n" +
        "The planning process is enclosed within <think> </think> tags, i.e. <think> planning process here </think> image here";
}
