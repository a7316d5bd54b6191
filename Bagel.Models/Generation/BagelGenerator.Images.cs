using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.Generation;

/// <summary>
/// An input image as the two context streams see it: the pixels after the reference's VAE transform and after its ViT
/// transform (the inferencer's <c>vae_transform</c> / <c>vit_transform</c>, both normalised to [−1, 1], [3, H, W]
/// float32). Bagel.Models does not decode or resize images; Bagel.Training's <c>BagelPipeline</c> makes these from
/// files with the reference's resize rules.
/// </summary>
/// <param name="VaePixels">[3, H, W], H and W multiples of <see cref="BagelGenerator.LatentDownsample"/>; null when
/// only the ViT stream is wanted (answering).</param>
/// <param name="VitPixels">[3, H', W'], H' and W' multiples of the ViT patch size; null when the model has no
/// understanding branch.</param>
public sealed record ContextImage(Tensor? VaePixels, Tensor? VitPixels);

public sealed partial class BagelGenerator
{
    /// <summary>
    /// Appends an input image's clean VAE tokens to <paramref name="context"/> (the reference's
    /// <c>prepare_vae_images</c> + <c>forward_cache_update_vae</c>): the VAE encodes the image (sampling its posterior,
    /// as the reference's <c>vae_model.encode</c> does), the latent is patchified, and
    /// <c>[start_of_image, vae2llm(z) + time_embedder(0) + latent_pos_embed, end_of_image]</c> goes through the
    /// backbone with full attention inside the segment over the cached prefix, latent rows through the gen experts,
    /// all at one RoPE position; keys/values are cached and the context's RoPE position advances by one.
    /// </summary>
    /// <param name="context">The context to extend.</param>
    /// <param name="pixels">[3, H, W] normalised to [−1, 1]; H and W multiples of <see cref="LatentDownsample"/>.</param>
    /// <param name="posteriorNoise">The VAE posterior noise (<see cref="RandomPurposes.VaePosteriorNoise"/>): one
    /// standard-normal draw shaped like the latent mean [1, z, H/f, W/f].</param>
    /// <returns>The image's latent token grid.</returns>
    /// <exception cref="ArgumentException">The image's size does not fit the model's latent grid.</exception>
    public LatentGrid AppendVaeImage(GenerationContext context, Tensor pixels, IRandomSource posteriorNoise)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(posteriorNoise);
        LatentGrid grid = InputGrid(pixels);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Device device = Device;
        int n = grid.TokenCount;
        Tensor latent = _vae.Encode(pixels.unsqueeze(0).to(float32, device), posteriorNoise)[0];
        Tensor tokens = LatentPatchifier.Patchify(latent, grid, _model.Config.LatentPatchSize);
        Tensor positions = FlattenedPositions(grid.Height * LatentDownsample, grid.Width * LatentDownsample, LatentDownsample,
            _model.Config.MaxLatentSize, device);
        Tensor timestep = zeros(1, float32, device);
        Tensor embedded = _model.Vae2Llm!.forward(tokens.to(_model.Vae2Llm.weight!.dtype))
            .add(_model.TimeEmbedder!.forward(timestep))
            .add(_model.LatentPosEmbed!.forward(positions));
        Tensor vaeIndexes = arange(1, n + 1, dtype: int64, device: device);
        Tensor sequence = Delimited(embedded, vaeIndexes, n, device);
        Tensor rope = full(n + 2, context.Rope, int64, device);
        _model.LanguageModel.Model.ForwardInference(sequence, rope, context.Cache, causal: false, updateCache: true,
            genTokenIndexes: _model.Config.UseMoe ? vaeIndexes : null);
        context.KvLength += n + 2;
        context.Rope += 1;
        return grid;
    }

    /// <summary>
    /// Appends an input image's ViT tokens to <paramref name="context"/> (the reference's <c>prepare_vit_images</c> +
    /// <c>forward_cache_update_vit</c>): the image is cut into patches, SigLIP encodes them, the connector maps them to
    /// the LLM width and <c>vit_pos_embed</c> is added; <c>[start_of_image, tokens, end_of_image]</c> goes through the
    /// understanding weights with full attention inside the segment, at one RoPE position; keys/values are cached.
    /// </summary>
    /// <param name="context">The context to extend.</param>
    /// <param name="pixels">[3, H, W] normalised to [−1, 1]; H and W multiples of the ViT patch size, at most
    /// <c>vit_max_num_patch_per_side</c> patches per side.</param>
    /// <returns>The number of ViT tokens appended.</returns>
    /// <exception cref="InvalidOperationException">The model has no understanding branch.</exception>
    /// <exception cref="ArgumentException">The image's size does not fit the ViT.</exception>
    public int AppendVitImage(GenerationContext context, Tensor pixels)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(pixels);
        if (_model.VitModel is not { } vit || _model.Config.VitConfig is not { } vitConfig)
            throw new InvalidOperationException("The model has no understanding branch (visual_und is false), so it cannot read images through the ViT.");
        int p = vitConfig.PatchSize, max = _model.Config.VitMaxNumPatchPerSide;
        if (pixels.dim() != 3 || pixels.shape[0] != 3 || pixels.shape[1] % p != 0 || pixels.shape[2] % p != 0 || pixels.shape[1] < p || pixels.shape[2] < p
            || (!_model.Config.InterpolatePos && (pixels.shape[1] / p > max || pixels.shape[2] / p > max)))
            throw new ArgumentException(
                $"A ViT input must be [3, H, W] with H and W multiples of the patch size {p}, at most {max} patches per side; got [{string.Join(", ", pixels.shape)}].", nameof(pixels));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Device device = Device;
        int h = (int)pixels.shape[1], w = (int)pixels.shape[2];
        int n = (h / p) * (w / p);
        // patchify: [3, h, w] → [h/p, w/p, p, p, 3] → [n, p·p·3] (the reference's "chpwq->hwpqc").
        Tensor patches = pixels.to(float32, device).reshape(3, h / p, p, w / p, p).permute(1, 3, 2, 4, 0).reshape(n, p * p * 3);
        Tensor positions = FlattenedPositions(h, w, p, max, device);
        Tensor features = vit.Forward(patches, positions, tensor(new long[] { n }));
        Tensor tokens = _model.Connector!.forward(features).add(_model.VitPosEmbed!.forward(positions));
        Tensor vitIndexes = arange(1, n + 1, dtype: int64, device: device);
        Tensor sequence = Delimited(tokens, vitIndexes, n, device);
        Tensor rope = full(n + 2, context.Rope, int64, device);
        _model.LanguageModel.Model.ForwardInference(sequence, rope, context.Cache, causal: false, updateCache: true);
        context.KvLength += n + 2;
        context.Rope += 1;
        return n;
    }

    /// <summary>The reference's <c>update_context_image</c>: the VAE stream first (when asked), then the ViT stream.</summary>
    /// <param name="context">The context to extend.</param>
    /// <param name="image">The image's two transformed tensors.</param>
    /// <param name="vae">Append the VAE tokens (needs <see cref="ContextImage.VaePixels"/>).</param>
    /// <param name="vit">Append the ViT tokens (needs <see cref="ContextImage.VitPixels"/>); skipped when the model has
    /// no understanding branch.</param>
    /// <param name="posteriorNoise">The VAE posterior noise source (used only with <paramref name="vae"/>).</param>
    /// <exception cref="ArgumentException">A needed tensor is missing.</exception>
    public void AppendImage(GenerationContext context, ContextImage image, bool vae, bool vit, IRandomSource posteriorNoise)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (vae)
            AppendVaeImage(context, image.VaePixels ?? throw new ArgumentException("The image has no VAE pixels.", nameof(image)), posteriorNoise);
        if (vit && _model.VitModel is not null)
            AppendVitImage(context, image.VitPixels ?? throw new ArgumentException("The image has no ViT pixels.", nameof(image)));
    }

    /// <summary>The token grid of an input image for the VAE stream.</summary>
    private LatentGrid InputGrid(Tensor pixels)
    {
        int f = LatentDownsample, max = _model.Config.MaxLatentSize;
        if (pixels.dim() != 3 || pixels.shape[0] != 3 || pixels.shape[1] % f != 0 || pixels.shape[2] % f != 0)
            throw new ArgumentException(
                $"A VAE input must be [3, H, W] with H and W multiples of {f}; got [{string.Join(", ", pixels.shape)}].", nameof(pixels));
        int h = (int)pixels.shape[1] / f, w = (int)pixels.shape[2] / f;
        if (h <= 0 || w <= 0 || (!_model.Config.InterpolatePos && (h > max || w > max)))
            throw new ArgumentException(
                $"An input image of {pixels.shape[1]}×{pixels.shape[2]} px makes a {h}×{w} latent grid; it must be between 1 and max_latent_size {max} per side ({f} px per token).", nameof(pixels));
        return new LatentGrid(h, w);
    }

    /// <summary><c>[start_of_image, tokens…, end_of_image]</c>: the delimiters' text embeddings around the rows.</summary>
    private Tensor Delimited(Tensor tokens, Tensor tokenIndexes, int n, Device device)
    {
        Tensor text = _model.LanguageModel.Model.EmbedTokens.forward(
            tensor(new long[] { SpecialTokens.StartOfImage, SpecialTokens.EndOfImage }, device: device));
        Tensor sequence = zeros(n + 2, _model.Config.LlmConfig.HiddenSize, text.dtype, device);
        sequence.index_copy_(0, tensor(new long[] { 0, n + 1 }, device: device), text);
        sequence.index_copy_(0, tokenIndexes, tokens.to(sequence.dtype));
        return sequence;
    }

    /// <summary>The reference's <c>get_flattened_position_ids_extrapolate</c> (<c>row·G + col</c>) or, with
    /// <c>interpolate_pos</c>, <c>_interpolate</c> (float32 fractional coordinates bucketed onto the G grid).</summary>
    private Tensor FlattenedPositions(int height, int width, int patch, int maxPerSide, Device device)
    {
        int rows = height / patch, cols = width / patch;
        if (!_model.Config.InterpolatePos)
        {
            Tensor r = arange(rows, dtype: int64, device: device).unsqueeze(1).mul(maxPerSide);
            return r.add(arange(cols, dtype: int64, device: device).unsqueeze(0)).flatten();
        }
        Tensor boundaries = arange(1.0 / maxPerSide, 1.0, 1.0 / maxPerSide, dtype: float32);
        Tensor h = bucketize(arange(0.0, 1 - 1e-6, 1.0 / rows, dtype: float32), boundaries, right: true);
        Tensor w = bucketize(arange(0.0, 1 - 1e-6, 1.0 / cols, dtype: float32), boundaries, right: true);
        return h.unsqueeze(1).mul(maxPerSide).add(w.unsqueeze(0)).flatten().to(int64, device);
    }
}
