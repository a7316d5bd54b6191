using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.Generation;

/// <summary>The special token ids generation writes around text and images (the reference's <c>new_token_ids</c>).</summary>
/// <param name="BosTokenId">Begins every text segment (<c>&lt;|im_start|&gt;</c>).</param>
/// <param name="EosTokenId">Ends every text segment (<c>&lt;|im_end|&gt;</c>).</param>
/// <param name="StartOfImage">Precedes an image's tokens (<c>&lt;|vision_start|&gt;</c>).</param>
/// <param name="EndOfImage">Follows an image's tokens (<c>&lt;|vision_end|&gt;</c>).</param>
public sealed record GenerationTokenIds(int BosTokenId, int EosTokenId, int StartOfImage, int EndOfImage);

/// <summary>One Euler step as the sampler saw it, for observers (tests, progress). The tensors are valid only during
/// the callback; clone what must outlive it.</summary>
/// <param name="Index">The step index, 0-based.</param>
/// <param name="Timestep">t at this step (1 = noise).</param>
/// <param name="XT">[N, D] latent tokens entering the step.</param>
/// <param name="Conditional">[N, D] velocity of the conditional branch.</param>
/// <param name="CfgText">[N, D] velocity of the text-unconditional branch, or null when not run at this step.</param>
/// <param name="CfgImg">[N, D] velocity of the image-unconditional branch, or null when not run at this step.</param>
/// <param name="Velocity">[N, D] the guided velocity the step uses: <c>x ← x − v·dt</c>.</param>
public sealed record FlowStep(int Index, float Timestep, Tensor XT, Tensor Conditional, Tensor? CfgText, Tensor? CfgImg, Tensor Velocity);

/// <summary>
/// Text-to-image generation with a BAGEL model (the reference's <c>InterleaveInferencer</c> for a single text prompt,
/// over bagel.py's <c>prepare_prompts</c>, <c>prepare_vae_latent(_cfg)</c>, <c>generate_image</c>, <c>_forward_flow</c>
/// and <c>decode_image</c>): the prompt is prefilled into a KV cache, three branches (conditional, text-unconditional
/// = empty context, image-unconditional = the text context) predict velocities, classifier-free guidance combines them,
/// and an Euler sampler integrates from noise (t = 1) to t = 0; the latent is unpatchified and decoded by the VAE.
/// </summary>
/// <remarks>
/// Computation stays in the model's dtype; the reference casts the generation path to bf16 (under autocast on GPU).
/// One image per call, as the reference's inferencer. Image inputs (editing), text answering and the "think" mode are in
/// the other parts of this class. Not ported: TaylorSeer caching, batching several prompts.
/// </remarks>
public sealed partial class BagelGenerator
{
    private readonly BagelModel _model;
    private readonly FluxAutoEncoder _vae;
    private readonly Func<string, IReadOnlyList<int>>? _tokenizer;

    /// <summary>Creates the generator.</summary>
    /// <param name="model">A BAGEL model with the generation branch (<c>visual_gen</c>).</param>
    /// <param name="vae">The FLUX autoencoder whose latent space the model was trained on.</param>
    /// <param name="tokenizer">The text tokenizer's encode function (e.g. <c>text =&gt; qwen2Tokenizer.Encode(text)</c>;
    /// Bagel.Models does not reference Bagel.Data), needed only by
    /// <see cref="TextToImage(string, ImageGenerationOptions, IRandomSource, CancellationToken)"/>; the token-id
    /// overloads work without it (null).</param>
    /// <param name="specialTokens">The ids of bos/eos and the image delimiters (the reference's <c>new_token_ids</c>;
    /// Bagel.Data's <c>BagelSpecialTokenIds</c> holds the same four values).</param>
    /// <exception cref="ArgumentException">The model has no generation branch, or its latent channels or downsample
    /// factor differ from the VAE's.</exception>
    public BagelGenerator(BagelModel model, FluxAutoEncoder vae, Func<string, IReadOnlyList<int>>? tokenizer, GenerationTokenIds specialTokens)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(vae);
        ArgumentNullException.ThrowIfNull(specialTokens);
        if (!model.Config.VisualGen || model.Config.VaeConfig is null)
            throw new ArgumentException("The model has no generation branch (visual_gen is false).", nameof(model));
        if (model.Config.VaeConfig.ZChannels != vae.Config.ZChannels || model.Config.VaeConfig.DownsampleFactor != vae.Config.DownsampleFactor)
            throw new ArgumentException(
                $"The model expects {model.Config.VaeConfig.ZChannels} latent channels at ×{model.Config.VaeConfig.DownsampleFactor}, the VAE has {vae.Config.ZChannels} at ×{vae.Config.DownsampleFactor}.", nameof(vae));
        _model = model;
        _vae = vae;
        _tokenizer = tokenizer;
        SpecialTokens = specialTokens;
    }

    /// <summary>Creates the generator with a tokenizer that also decodes, as the "think" mode needs (the reference
    /// decodes the reasoning and feeds the text back through the tokenizer).</summary>
    /// <param name="model">A BAGEL model with the generation branch (<c>visual_gen</c>).</param>
    /// <param name="vae">The FLUX autoencoder whose latent space the model was trained on.</param>
    /// <param name="tokenizer">The tokenizer's encode function.</param>
    /// <param name="decoder">The tokenizer's decode function, special tokens rendered (as the reference's
    /// <c>tokenizer.decode</c>).</param>
    /// <param name="specialTokens">The ids of bos/eos and the image delimiters.</param>
    public BagelGenerator(BagelModel model, FluxAutoEncoder vae, Func<string, IReadOnlyList<int>> tokenizer,
        Func<IReadOnlyList<int>, string> decoder, GenerationTokenIds specialTokens)
        : this(model, vae, tokenizer, specialTokens)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        _decoder = decoder;
    }

    private readonly Func<IReadOnlyList<int>, string>? _decoder;

    /// <summary>The special token ids.</summary>
    public GenerationTokenIds SpecialTokens { get; }

    /// <summary>Pixels per latent token side: the VAE downsample × <c>latent_patch_size</c> (the reference's
    /// <c>latent_downsample</c>).</summary>
    public int LatentDownsample => _model.Config.VaeConfig!.DownsampleFactor * _model.Config.LatentPatchSize;

    /// <summary>An empty context for this model.</summary>
    /// <returns>A new context; the caller disposes it.</returns>
    public GenerationContext CreateContext() => new(_model.Config.LlmConfig.NumHiddenLayers);

    /// <summary>
    /// Appends a text segment <c>[bos, ids…, eos]</c> to <paramref name="context"/> (the reference's
    /// <c>update_context_text</c>): causal attention over the cached prefix, understanding weights, keys/values cached,
    /// RoPE positions continuing from the context.
    /// </summary>
    /// <param name="context">The context to extend.</param>
    /// <param name="tokenIds">The prompt's token ids, without bos/eos.</param>
    public void AppendText(GenerationContext context, IReadOnlyList<int> tokenIds)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(tokenIds);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Device device = Device;
        long[] ids = [SpecialTokens.BosTokenId, .. tokenIds.Select(i => (long)i), SpecialTokens.EosTokenId];
        Tensor embeddings = _model.LanguageModel.Model.EmbedTokens.forward(tensor(ids, device: device));
        Tensor positions = arange(context.Rope, context.Rope + ids.Length, dtype: int64, device: device);
        _model.LanguageModel.Model.ForwardInference(embeddings, positions, context.Cache, causal: true, updateCache: true);
        context.KvLength += ids.Length;
        context.Rope += ids.Length;
        context.TextSegments.Add([.. tokenIds]);
    }

    /// <summary>
    /// A new context holding what <paramref name="context"/> holds, prefilled again from its text segments (the
    /// sampler's path without the prefix cache, <see cref="ImageGenerationOptions.UsePrefixCache"/> false).
    /// </summary>
    /// <exception cref="InvalidOperationException">The context holds more than text (it cannot be rebuilt from its segments).</exception>
    private GenerationContext Recompute(GenerationContext context)
    {
        var fresh = CreateContext();
        foreach (IReadOnlyList<int> segment in context.TextSegments) AppendText(fresh, segment);
        if (fresh.KvLength != context.KvLength || fresh.Rope != context.Rope)
        {
            fresh.Dispose();
            throw new InvalidOperationException(
                $"UsePrefixCache = false recomputes a context from its text segments, but this one holds {context.KvLength} cached tokens and its text only {fresh.KvLength}; " +
                "contexts with image inputs need the prefix cache (UsePrefixCache = true).");
        }
        return fresh;
    }

    /// <summary>Text-to-image from a prompt string (needs the tokenizer).</summary>
    /// <param name="prompt">The prompt.</param>
    /// <param name="options">Sampling settings.</param>
    /// <param name="noise">The source of the initial noise (<see cref="RandomPurposes.GenerationNoise"/>): one
    /// standard-normal [h·w, p·p·C] float32 tensor.</param>
    /// <param name="cancellationToken">Stops the sampling loop between steps.</param>
    /// <returns>The image [H, W, 3] uint8 on the CPU; the caller owns it.</returns>
    /// <exception cref="InvalidOperationException">The generator has no tokenizer.</exception>
    public Tensor TextToImage(string prompt, ImageGenerationOptions options, IRandomSource noise, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        Func<string, IReadOnlyList<int>> encode = _tokenizer ?? throw new InvalidOperationException(
            "This generator was created without a tokenizer; pass one, or call the token-id overload.");
        return TextToImage(encode(prompt), options, noise, null, cancellationToken);
    }

    /// <summary>
    /// Text-to-image from prompt token ids (the reference's <c>interleave_inference([prompt])</c>): the conditional
    /// context holds the prompt, the text-unconditional context is empty, the image-unconditional context holds the
    /// prompt too; then <see cref="GenerateLatent"/> and <see cref="DecodeImage"/>.
    /// </summary>
    /// <param name="tokenIds">The prompt's token ids, without bos/eos.</param>
    /// <param name="options">Sampling settings.</param>
    /// <param name="noise">The source of the initial noise.</param>
    /// <param name="onStep">Called after every Euler step, or null.</param>
    /// <param name="cancellationToken">Stops the sampling loop between steps.</param>
    /// <returns>The image [H, W, 3] uint8 on the CPU; the caller owns it.</returns>
    public Tensor TextToImage(IReadOnlyList<int> tokenIds, ImageGenerationOptions options, IRandomSource noise,
        Action<FlowStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        using GenerationContext conditional = CreateContext();
        using GenerationContext cfgText = CreateContext();
        AppendText(conditional, tokenIds);
        using GenerationContext cfgImg = conditional.Clone();
        using Tensor latent = GenerateLatent(conditional, cfgText, cfgImg, options, noise, onStep, cancellationToken);
        return DecodeImage(latent, options.Height, options.Width);
    }

    /// <summary>
    /// The sampler (the reference's <c>generate_image</c>): draws the initial noise x₁ [h·w, p·p·C], then for every
    /// scheduled t runs the conditional branch and, where the scales call for them, the two unconditional branches on
    /// the query <c>[start_of_image, h·w latent tokens, end_of_image]</c> (full attention, one RoPE position for the
    /// whole image, latent tokens through the gen experts), guides, and steps <c>x ← x − v·dt</c>.
    /// </summary>
    /// <param name="conditional">The full context (prompt and any inputs).</param>
    /// <param name="cfgText">The context without the text condition (empty for text-to-image).</param>
    /// <param name="cfgImg">The context without the image condition (the prompt only for text-to-image).</param>
    /// <param name="options">Sampling settings.</param>
    /// <param name="noise">The source of the initial noise.</param>
    /// <param name="onStep">Called after every step, or null.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>The final latent tokens [h·w, p·p·C] (float32); the caller owns them.</returns>
    /// <exception cref="ArgumentException">The image size does not fit the model's latent grid.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public Tensor GenerateLatent(GenerationContext conditional, GenerationContext cfgText, GenerationContext cfgImg,
        ImageGenerationOptions options, IRandomSource noise, Action<FlowStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(conditional);
        ArgumentNullException.ThrowIfNull(cfgText);
        ArgumentNullException.ThrowIfNull(cfgImg);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(noise);
        options.Validate();
        LatentGrid grid = Grid(options);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Device device = Device;
        int n = grid.TokenCount;
        var query = new ImageQuery(this, grid, device);

        Tensor x = noise.NextStandardNormalTensor([n, _model.Config.PatchLatentDim], float32, device);
        (float[] timesteps, float[] dts) = FlowSampler.Schedule(options.NumTimesteps, options.TimestepShift);
        for (int i = 0; i < timesteps.Length; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var stepScope = NewDisposeScope();
            float t = timesteps[i];
            bool guide = FlowSampler.InGuidanceInterval(t, options.CfgInterval);
            double textScale = guide ? options.CfgTextScale : 1.0, imgScale = guide ? options.CfgImgScale : 1.0;
            Tensor sequence = query.Sequence(x, t);
            Tensor Branch(GenerationContext context)
            {
                if (options.UsePrefixCache) return query.Velocity(sequence, context);
                using GenerationContext recomputed = Recompute(context); // the whole prefix again, every branch, every step
                return query.Velocity(sequence, recomputed);
            }
            Tensor v = Branch(conditional);
            Tensor? vText = textScale > 1.0 ? Branch(cfgText) : null;
            Tensor? vImg = imgScale > 1.0 ? Branch(cfgImg) : null;
            Tensor guided = FlowSampler.Guide(v, vText, vImg, textScale, imgScale, options.CfgRenormType, options.CfgRenormMin);
            onStep?.Invoke(new FlowStep(i, t, x, v, vText, vImg, guided));
            Tensor next = x.sub(guided.to(x.dtype).mul(dts[i]));
            x = next.MoveToOuterDisposeScope();
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Latent tokens → image (the reference's <c>decode_image</c>): unpatchify to [C, h·p, w·p], VAE decode, then
    /// <c>(x·0.5 + 0.5).clamp(0, 1)·255</c> truncated to uint8.
    /// </summary>
    /// <param name="latentTokens">[h·w, p·p·C].</param>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <returns>[H', W', 3] uint8 on the CPU (H' = h·p·VAE factor); the caller owns it.</returns>
    public Tensor DecodeImage(Tensor latentTokens, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(latentTokens);
        LatentGrid grid = Grid(new ImageGenerationOptions { Height = height, Width = width });
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor latent = LatentPatchifier.Unpatchify(latentTokens, grid, _vae.Config.ZChannels, _model.Config.LatentPatchSize);
        Tensor image = _vae.Decode(latent.unsqueeze(0)).to(float32);
        Tensor pixels = image.mul(0.5).add(0.5).clamp(0, 1)[0].permute(1, 2, 0).mul(255);
        return pixels.to(uint8).cpu().MoveToOuterDisposeScope();
    }

    private Device Device => _model.LanguageModel.Model.EmbedTokens.weight!.device;

    private LatentGrid Grid(ImageGenerationOptions options)
    {
        int f = LatentDownsample, max = _model.Config.MaxLatentSize;
        int h = options.Height / f, w = options.Width / f;
        if (h <= 0 || w <= 0 || h > max || w > max)
            throw new ArgumentException(
                $"An image of {options.Height}×{options.Width} px makes a {h}×{w} latent grid; it must be between 1 and max_latent_size {max} per side ({f} px per token).");
        return new LatentGrid(h, w);
    }

    /// <summary>The query segment of one image being generated, shared by all branches (the reference's
    /// <c>prepare_vae_latent</c> / <c>prepare_vae_latent_cfg</c>).</summary>
    private sealed class ImageQuery
    {
        private readonly BagelGenerator _owner;
        private readonly Tensor _textIds, _textIndexes, _vaeIndexes, _latentPositions;
        private readonly int _length;

        public ImageQuery(BagelGenerator owner, LatentGrid grid, Device device)
        {
            _owner = owner;
            int n = grid.TokenCount, max = owner._model.Config.MaxLatentSize;
            _length = n + 2;
            _textIds = tensor(new long[] { owner.SpecialTokens.StartOfImage, owner.SpecialTokens.EndOfImage }, device: device);
            _textIndexes = tensor(new long[] { 0, n + 1 }, device: device);
            _vaeIndexes = arange(1, n + 1, dtype: int64, device: device);
            long[] positions = new long[n];
            for (int r = 0, k = 0; r < grid.Height; r++)
                for (int c = 0; c < grid.Width; c++) positions[k++] = (long)r * max + c;
            _latentPositions = tensor(positions, device: device);
        }

        /// <summary>The query's input embeddings: delimiters' text embeddings and
        /// <c>vae2llm(x) + time_embedder(t) + latent_pos_embed</c> at the latent rows.</summary>
        public Tensor Sequence(Tensor x, float t)
        {
            BagelModel model = _owner._model;
            Tensor text = model.LanguageModel.Model.EmbedTokens.forward(_textIds);
            Tensor sequence = zeros(_length, model.Config.LlmConfig.HiddenSize, text.dtype, text.device);
            sequence.index_copy_(0, _textIndexes, text);
            Tensor timestep = full(x.shape[0], t, float32, x.device);
            Tensor tokens = model.Vae2Llm!.call(x.to(model.Vae2Llm.weight!.dtype))
                .add(model.TimeEmbedder!.forward(timestep))
                .add(model.LatentPosEmbed!.forward(_latentPositions));
            sequence.index_copy_(0, _vaeIndexes, tokens.to(sequence.dtype));
            return sequence;
        }

        /// <summary>One branch: the backbone over the context's cache (full attention, no cache update, latent rows
        /// through the gen experts), <c>llm2vae</c> at the latent rows.</summary>
        public Tensor Velocity(Tensor sequence, GenerationContext context)
        {
            BagelModel model = _owner._model;
            Tensor positions = full(_length, context.Rope, int64, sequence.device);
            Tensor hidden = model.LanguageModel.Model.ForwardInference(sequence, positions, context.Cache, causal: false,
                updateCache: false, genTokenIndexes: model.Config.UseMoe ? _vaeIndexes : null);
            return model.Llm2Vae!.call(hidden.index_select(0, _vaeIndexes)).to(float32);
        }
    }
}
