using Bagel.Core.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.Generation;

public sealed partial class BagelGenerator
{
    /// <summary>
    /// Decodes text after <paramref name="context"/> (the reference's <c>gen_text</c> → <c>prepare_start_tokens</c> +
    /// <c>generate_text</c>): a copy of the context is extended one token at a time, starting with bos at the context's
    /// RoPE position, causal attention over the cache, understanding weights, <c>lm_head</c> on the new row; the next
    /// token is the argmax or a draw from <c>softmax(logits / temperature)</c>. Stops after
    /// <see cref="TextGenerationOptions.MaxLength"/> steps or when eos is predicted (eos is not returned).
    /// </summary>
    /// <param name="context">The prefix (not modified: the reference decodes on a deep copy).</param>
    /// <param name="options">Decoding settings.</param>
    /// <param name="random">Sampling draws (<see cref="RandomPurposes.TextSampling"/>): one uniform per sampled token,
    /// mapped through the inverse CDF of the probabilities (the reference uses <c>torch.multinomial</c>, whose stream
    /// cannot be replayed); unused when greedy (may be null then).</param>
    /// <param name="onStep">Called after every step, or null.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>The generated token ids, without the start token and without eos.</returns>
    /// <exception cref="ArgumentException">Sampling without a random source.</exception>
    public IReadOnlyList<int> GenerateText(GenerationContext context, TextGenerationOptions options, IRandomSource? random = null,
        Action<TextStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.DoSample && random is null) throw new ArgumentException("Sampling (do_sample) needs a random source.", nameof(random));
        if (!options.UseKvCache)
            throw new ArgumentException("GenerateText(context, …) decodes on the context's cache; use GenerateText(inputs, …) to decode without a cache.", nameof(options));
        using GenerationContext work = context.Clone();
        return Decode(options, random, onStep, cancellationToken, (token, step) =>
        {
            Tensor embedding = _model.LanguageModel.Model.EmbedTokens.forward(tensor(new long[] { token }, device: Device));
            Tensor position = tensor(new long[] { work.Rope }, device: Device);
            Tensor hidden = _model.LanguageModel.Model.ForwardInference(embedding, position, work.Cache, causal: true, updateCache: true);
            work.KvLength += 1;
            work.Rope += 1;
            return hidden[0];
        });
    }

    /// <summary>
    /// Answers over interleaved inputs (the reference's <c>interleave_inference(…, understanding_output=True)</c>):
    /// images enter through the ViT stream only, texts as <c>[bos, text, eos]</c>, then <see cref="GenerateText(GenerationContext, TextGenerationOptions, IRandomSource?, Action{TextStep}?, CancellationToken)"/>.
    /// With <paramref name="think"/>, the understanding "think" system prompt (<see cref="ThinkPrompts.Understanding"/>)
    /// comes first (needs the tokenizer). With <see cref="TextGenerationOptions.UseKvCache"/> false every token
    /// recomputes the whole sequence from the inputs (the benchmark's baseline; same tokens).
    /// </summary>
    /// <param name="inputs">Texts and images in order.</param>
    /// <param name="options">Decoding settings.</param>
    /// <param name="random">Sampling draws; unused when greedy.</param>
    /// <param name="think">Prepend the think system prompt.</param>
    /// <param name="onStep">Called after every step, or null.</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    /// <returns>The generated ids, without the start token and eos.</returns>
    public IReadOnlyList<int> Understand(IReadOnlyList<InterleaveInput> inputs, TextGenerationOptions options, IRandomSource? random = null,
        bool think = false, Action<TextStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.DoSample && random is null) throw new ArgumentException("Sampling (do_sample) needs a random source.", nameof(random));
        IReadOnlyList<int>? system = think ? Encode(ThinkPrompts.Understanding) : null;
        if (options.UseKvCache)
        {
            using GenerationContext context = CreateContext();
            if (system is not null) AppendText(context, system);
            foreach (InterleaveInput input in inputs)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (input is InterleaveInput.Text text) AppendText(context, text.TokenIds);
                else if (input is InterleaveInput.Image image) AppendImage(context, image.Pixels, vae: false, vit: true, NoDraws.Instance);
            }
            return GenerateText(context, options, random, onStep, cancellationToken);
        }

        // Without a cache: rebuild the prefix and run the decoded tokens as one causal segment for every new token.
        var decoded = new List<long>();
        return Decode(options, random, onStep, cancellationToken, (token, step) =>
        {
            decoded.Add(token);
            using GenerationContext context = CreateContext();
            if (system is not null) AppendText(context, system);
            foreach (InterleaveInput input in inputs)
            {
                if (input is InterleaveInput.Text text) AppendText(context, text.TokenIds);
                else if (input is InterleaveInput.Image image) AppendImage(context, image.Pixels, vae: false, vit: true, NoDraws.Instance);
            }
            Tensor embeddings = _model.LanguageModel.Model.EmbedTokens.forward(tensor(decoded.ToArray(), device: Device));
            Tensor positions = arange(context.Rope, context.Rope + decoded.Count, dtype: int64, device: Device);
            Tensor hidden = _model.LanguageModel.Model.ForwardInference(embeddings, positions, context.Cache, causal: true, updateCache: false);
            return hidden[decoded.Count - 1];
        });
    }

    /// <summary>The decoding loop of <c>generate_text</c> over a step function (token → final hidden row).</summary>
    private IReadOnlyList<int> Decode(TextGenerationOptions options, IRandomSource? random, Action<TextStep>? onStep,
        CancellationToken cancellationToken, Func<int, int, Tensor> step)
    {
        using var noGrad = no_grad();
        var generated = new List<int>();
        int current = SpecialTokens.BosTokenId;
        for (int i = 0; i < options.MaxLength; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            if (i > 0) generated.Add(current);
            Tensor hidden = step(current, i);
            Tensor logits = _model.LanguageModel.LmHead.forward(hidden.unsqueeze(0))[0].to(float32);
            int next = options.DoSample ? SampleToken(logits, options.Temperature, random!) : (int)logits.argmax().item<long>();
            onStep?.Invoke(new TextStep(i, current, logits, next));
            current = next;
            if (next == SpecialTokens.EosTokenId) break;
        }
        return generated;
    }

    /// <summary>Inverse-CDF draw from <c>softmax(logits / temperature)</c> with one uniform (float64 cumulative sum).</summary>
    private static int SampleToken(Tensor logits, double temperature, IRandomSource random)
    {
        double[] probabilities = logits.div(temperature).softmax(-1).to(float64).cpu().data<double>().ToArray();
        double u = random.NextUniform(), total = probabilities.Sum() * u, sum = 0;
        for (int k = 0; k < probabilities.Length; k++)
        {
            sum += probabilities[k];
            if (sum > total && probabilities[k] > 0) return k;
        }
        for (int k = probabilities.Length - 1; k >= 0; k--)
            if (probabilities[k] > 0) return k;
        return probabilities.Length - 1;
    }

    private IReadOnlyList<int> Encode(string text) => (_tokenizer ?? throw new InvalidOperationException(
        "The think mode feeds its system prompt through the tokenizer; create the generator with one.")).Invoke(text);

    /// <summary>The text the reference keeps of a decoded sequence: <c>decode([bos] + ids)</c>, then the part before
    /// the first eos marker and after the first bos marker (<c>split('&lt;|im_end|&gt;')[0].split('&lt;|im_start|&gt;')[1]</c>).</summary>
    /// <param name="ids">Generated ids (without the start token).</param>
    /// <returns>The answer text.</returns>
    /// <exception cref="InvalidOperationException">The generator has no decoder.</exception>
    public string DecodeAnswer(IReadOnlyList<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        Func<IReadOnlyList<int>, string> decode = _decoder ?? throw new InvalidOperationException(
            "This generator was created without a decoder; pass one to turn token ids into text.");
        string bos = decode([SpecialTokens.BosTokenId]), eos = decode([SpecialTokens.EosTokenId]);
        string full = decode([SpecialTokens.BosTokenId, .. ids]);
        string head = full.Split(eos)[0];
        string[] parts = head.Split(bos);
        return parts.Length > 1 ? parts[1] : "";
    }

    /// <summary>A source for paths that draw nothing (ViT-only contexts).</summary>
    private sealed class NoDraws : IRandomSource
    {
        public static readonly NoDraws Instance = new();
        public double NextUniform() => throw new InvalidOperationException("No draw expected here.");
        public long NextInt(long minInclusive, long maxExclusive) => throw new InvalidOperationException("No draw expected here.");
        public double NextStandardNormal() => throw new InvalidOperationException("No draw expected here.");
        public Tensor NextStandardNormalTensor(ReadOnlySpan<long> shape, ScalarType dtype, Device device) =>
            throw new InvalidOperationException("No draw expected here.");
    }
}
