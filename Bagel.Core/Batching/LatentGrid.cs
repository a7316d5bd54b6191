namespace Bagel.Core.Batching;

/// <summary>The latent token grid of one VAE image: h = H/16 rows and w = W/16 columns (the reference's
/// <c>patchified_vae_latent_shapes</c> entry).</summary>
/// <param name="Height">Token rows h.</param>
/// <param name="Width">Token columns w.</param>
public readonly record struct LatentGrid(int Height, int Width)
{
    /// <summary>The number of latent tokens, h·w.</summary>
    public int TokenCount => Height * Width;
}
