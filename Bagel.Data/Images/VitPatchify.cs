using static TorchSharp.torch;

namespace Bagel.Data.Images;

/// <summary>
/// The reference's <c>patchify</c> (data/data_utils.py) for ViT images: [C, H, W] → [N, p·p·C] with patches in
/// row-major order and, inside a patch, pixel row, pixel column, then channel (channel fastest).
/// The latent (VAE) patchify belongs to the model.
/// </summary>
public static class VitPatchify
{
    /// <summary>SigLIP's patch size.</summary>
    public const int SiglipPatchSize = 14;

    /// <summary>Returns a new contiguous tensor [(H/p)·(W/p), p·p·C]; the caller disposes it.</summary>
    /// <exception cref="ArgumentException">The tensor is not [C, H, W] with H and W multiples of <paramref name="patchSize"/>.</exception>
    public static Tensor Patchify(Tensor image, int patchSize = SiglipPatchSize)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(patchSize);
        if (image.dim() != 3)
            throw new ArgumentException($"patchify needs an image tensor [C, H, W]; got shape [{string.Join(", ", image.shape)}].", nameof(image));
        long c = image.shape[0], h = image.shape[1], w = image.shape[2];
        if (h % patchSize != 0 || w % patchSize != 0)
            throw new ArgumentException($"patchify needs H and W divisible by the patch size {patchSize}; got {h}x{w}. Resize with a matching image stride.", nameof(image));
        using var scope = NewDisposeScope();
        var patches = image.reshape(c, h / patchSize, patchSize, w / patchSize, patchSize)
            .permute(1, 3, 2, 4, 0)                       // (row, col, py, px, c)
            .reshape(-1, patchSize * patchSize * c)
            .contiguous();
        return patches.MoveToOuterDisposeScope();
    }
}
