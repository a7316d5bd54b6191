using Bagel.Data.Images;
using Bagel.Data.Tokenization;
using Bagel.Models.Generation;

namespace Bagel.Training.ValidationImages;

/// <summary>
/// Validation images during training (<c>TrainerBuilder.UseValidationImages</c>): fixed prompts rendered with the EMA
/// weights every <see cref="EverySteps"/> steps and at the end of the run into a PNG grid with the prompts drawn under
/// the images (edits as input and output, questions as the picture with the question and the model's answer), a text
/// file of the answers, a JSON sidecar listing everything, and an image in TensorBoard. Rendering never changes
/// training: its noise comes from its own seeded source, torch's global generator, every module's train/eval mode and
/// (LoRA with EMA) the live adapter weights are restored.
/// </summary>
public sealed record ValidationImageOptions
{
    /// <summary>The fixed entries (see <see cref="ValidationPromptFile"/>), in grid order: text-to-image prompts and
    /// edits are rendered with <see cref="Generation"/>'s sampler, questions answered with <see cref="TextGeneration"/>.
    /// A question needs the model's understanding branch (<c>visual_und</c>); without it the question is skipped
    /// (warned once, listed in the sidecar).</summary>
    public required IReadOnlyList<ValidationPrompt> Prompts { get; init; }

    /// <summary>The tokenizer the model trains with (with BAGEL's special tokens).</summary>
    public required BagelTokenizerSetup Tokenizer { get; init; }

    /// <summary>Render every this many completed steps (and at the end of the run); 0 renders at every checkpoint
    /// (<c>save_every</c>). Default 0.</summary>
    public int EverySteps { get; init; }

    /// <summary>Where the grids go (<c>step_0000100.png</c> and <c>step_0000100.json</c>). Default (null):
    /// <c>&lt;results_dir&gt;/validation</c>, beside <c>&lt;results_dir&gt;/checkpoints</c> by default.</summary>
    public string? OutputFolder { get; init; }

    /// <summary>The sampler settings of text-to-image prompts and edits (an edit's output has its resized input's size
    /// instead). Default (null): <see cref="DefaultGeneration"/> at the largest size the model makes, up to
    /// <see cref="DefaultMaxSide"/> pixels per side.</summary>
    public ImageGenerationOptions? Generation { get; init; }

    /// <summary>How questions are answered. Default (null): <see cref="DefaultTextGeneration"/>, greedy decoding of at
    /// most <see cref="DefaultAnswerMaxLength"/> steps.</summary>
    public TextGenerationOptions? TextGeneration { get; init; }

    /// <summary>The VAE-stream transform of edit and question pictures (the inferencer's <c>vae_transform</c>; its resize
    /// also feeds the ViT stream). Default (null): the inferencer's <c>ImageTransform(1024, 512, 16)</c> with the
    /// largest side capped at what the model generates. Give the training data's transform to validate at its sizes.</summary>
    public ImageTransformOptions? VaeTransform { get; init; }

    /// <summary>The ViT-stream transform of edit and question pictures (<c>vit_transform</c>). Default (null): the
    /// inferencer's <c>ImageTransform(980, 224, 14)</c>.</summary>
    public ImageTransformOptions? VitTransform { get; init; }

    /// <summary>The seed of the images' noise (prompt i draws from its own stream of it, so every render of the same
    /// weights gives the same grid). Default (null): <c>global_seed</c>.</summary>
    public long? Seed { get; init; }

    /// <summary>Render with the EMA weights (default) or, false, with the weights being trained.</summary>
    public bool UseEma { get; init; } = true;

    /// <summary>The tag of the grid in TensorBoard (and every other <c>IImageMetricSink</c>). Default <c>val/images</c>.</summary>
    public string Tag { get; init; } = "val/images";

    /// <summary>Called after every render, on the loop's thread. Default none.</summary>
    public Action<ValidationImageResult>? OnRendered { get; init; }

    /// <summary>Most decoding steps of a validation answer by default: answers stay short and cheap next to training
    /// (<see cref="TextGenerationOptions.MaxLength"/> defaults to the reference's 1000).</summary>
    public const int DefaultAnswerMaxLength = 64;

    /// <summary>The default answering settings: greedy (the reference's <c>do_sample=False</c>), at most
    /// <see cref="DefaultAnswerMaxLength"/> steps.</summary>
    public static TextGenerationOptions DefaultTextGeneration { get; } = new() { MaxLength = DefaultAnswerMaxLength };

    /// <summary>Largest side of the default image size: validation stays cheap next to training.</summary>
    public const int DefaultMaxSide = 512;

    /// <summary>
    /// The default sampler settings: the reference's <c>interleave_inference</c> guidance (text scale 3, interval
    /// (0.4, 1], global renorm, shift 3) with 25 timesteps instead of 50 and image guidance off (scale 1: for
    /// text-to-image that branch only repeats the conditional one).
    /// </summary>
    public static ImageGenerationOptions DefaultGeneration(int height, int width) => new()
    {
        Height = height, Width = width, NumTimesteps = 25, CfgImgScale = 1.0,
    };
}

/// <summary>One render of the validation prompts.</summary>
/// <param name="Step">Completed optimizer steps of the weights rendered.</param>
/// <param name="PngPath">The grid (null when no entry could be rendered or answered).</param>
/// <param name="SidecarPath">The JSON listing the entries, the answers and the settings.</param>
/// <param name="Rendered">Images generated (text-to-image prompts and edits).</param>
/// <param name="Answered">Questions answered.</param>
/// <param name="Skipped">Entries skipped (questions for a model without an understanding branch).</param>
/// <param name="AnswersPath">The answers' text file (<c>step_NNNNNNN_answers.txt</c>); null without questions answered.</param>
/// <param name="Elapsed">Wall time of the render.</param>
public sealed record ValidationImageResult(long Step, string? PngPath, string SidecarPath, int Rendered, int Answered, int Skipped,
    string? AnswersPath, TimeSpan Elapsed);
