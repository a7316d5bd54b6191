using Bagel.Core.Batching;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// BAGEL's latent patchify (the visual-generation branch of reference <c>Bagel.forward</c>): a latent
/// [C, ≥h·p, ≥w·p] is cropped to its top-left h·p × w·p, viewed as [C, h, p, w, p] and reordered to (h, w, py, px, c),
/// giving h·w row-major tokens of p·p·C features with feature index <c>(py·p + px)·C + c</c> (channel fastest).
/// <see cref="Unpatchify"/> is the exact inverse (used on <c>llm2vae</c> outputs).
/// </summary>
public static class LatentPatchifier
{
    /// <summary>Reference <c>latent_patch_size</c> default: 2×2 latent pixels per token (16 image pixels with the ×8 VAE).</summary>
    public const int DefaultPatchSize = 2;

    /// <summary>Patchifies one latent.</summary>
    /// <param name="latent">[C, H', W'] with H' ≥ h·p and W' ≥ w·p (a padded latent is cropped top-left).</param>
    /// <param name="grid">The token grid h × w.</param>
    /// <param name="patchSize">p, latent pixels per token side.</param>
    /// <returns>[h·w, p·p·C] tokens.</returns>
    /// <exception cref="ArgumentException">The latent is not 3-D or is smaller than the grid needs.</exception>
    public static Tensor Patchify(Tensor latent, LatentGrid grid, int patchSize = DefaultPatchSize)
    {
        ArgumentNullException.ThrowIfNull(latent);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(patchSize);
        long rows = (long)grid.Height * patchSize, cols = (long)grid.Width * patchSize;
        if (latent.dim() != 3 || latent.shape[1] < rows || latent.shape[2] < cols)
            throw new ArgumentException(
                $"A latent for a {grid.Height}×{grid.Width} token grid (patch {patchSize}) must be [C, ≥{rows}, ≥{cols}]; got [{string.Join(", ", latent.shape)}].",
                nameof(latent));
        long channels = latent.shape[0];
        using var scope = NewDisposeScope();
        Tensor cropped = latent[.., ..(int)rows, ..(int)cols];
        return cropped.reshape(channels, grid.Height, patchSize, grid.Width, patchSize)
            .permute(1, 3, 2, 4, 0)
            .reshape(grid.TokenCount, (long)patchSize * patchSize * channels)
            .MoveToOuterDisposeScope();
    }

    /// <summary>Patchifies every latent of a pack and concatenates the tokens in image order (the reference's
    /// <c>packed_latent_clean</c>).</summary>
    /// <param name="latents">One latent per VAE image: rows of the padded batch or the crops of
    /// <c>FluxAutoEncoder.EncodePacked</c>.</param>
    /// <param name="grids">The token grid of each image (<c>patchified_vae_latent_shapes</c>).</param>
    /// <param name="patchSize">p, latent pixels per token side.</param>
    /// <returns>[Σ h·w, p·p·C] tokens.</returns>
    /// <exception cref="ArgumentException">The counts differ or there is no image.</exception>
    public static Tensor PatchifyPacked(IReadOnlyList<Tensor> latents, IReadOnlyList<LatentGrid> grids, int patchSize = DefaultPatchSize)
    {
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(grids);
        if (latents.Count != grids.Count || latents.Count == 0)
            throw new ArgumentException(
                $"PatchifyPacked needs one latent per token grid and at least one image; got {latents.Count} latents and {grids.Count} grids.",
                nameof(latents));
        using var scope = NewDisposeScope();
        var tokens = new Tensor[latents.Count];
        for (int i = 0; i < latents.Count; i++) tokens[i] = Patchify(latents[i], grids[i], patchSize);
        return cat(tokens, 0).MoveToOuterDisposeScope();
    }

    /// <summary>Inverse of <see cref="Patchify"/>: [h·w, p·p·C] tokens → a [C, h·p, w·p] latent.</summary>
    /// <param name="tokens">The tokens of one image, row-major over the grid.</param>
    /// <param name="grid">The token grid h × w.</param>
    /// <param name="channels">C, the latent channels (<c>z_channels</c>).</param>
    /// <param name="patchSize">p, latent pixels per token side.</param>
    /// <returns>The latent.</returns>
    /// <exception cref="ArgumentException">The token tensor's shape does not match the grid, channels and patch size.</exception>
    public static Tensor Unpatchify(Tensor tokens, LatentGrid grid, int channels, int patchSize = DefaultPatchSize)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        long features = (long)patchSize * patchSize * channels;
        if (tokens.dim() != 2 || tokens.shape[0] != grid.TokenCount || tokens.shape[1] != features)
            throw new ArgumentException(
                $"Tokens of a {grid.Height}×{grid.Width} grid with {channels} channels and patch {patchSize} must be [{grid.TokenCount}, {features}]; got [{string.Join(", ", tokens.shape)}].",
                nameof(tokens));
        using var scope = NewDisposeScope();
        return tokens.reshape(grid.Height, grid.Width, patchSize, patchSize, channels)
            .permute(4, 0, 2, 1, 3)
            .reshape(channels, (long)grid.Height * patchSize, (long)grid.Width * patchSize)
            .MoveToOuterDisposeScope();
    }
}
