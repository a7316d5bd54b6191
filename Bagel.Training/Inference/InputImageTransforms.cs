using Bagel.Data.Images;
using Bagel.Models.Bagel;
using Bagel.Models.Generation;

namespace Bagel.Training.Inference;

/// <summary>
/// The two transforms an input image (an edit's picture, a question's picture) goes through before it enters a
/// generation context, as the reference's inferencer applies them: the VAE transform's resize first, then each stream's
/// transform of the resized picture (<c>vae_transform</c> / <c>vit_transform</c>, both normalised to [−1, 1]).
/// <see cref="BagelPipeline"/> and the validation images of training share this one path.
/// </summary>
public sealed class InputImageTransforms
{
    /// <summary>The inferencer's <c>vae_transform</c>: <c>ImageTransform(1024, 512, 16)</c>.</summary>
    public static ImageTransformOptions ReferenceVae { get; } = new() { MaxImageSize = 1024, MinImageSize = 512, ImageStride = 16 };

    /// <summary>The inferencer's <c>vit_transform</c>: <c>ImageTransform(980, 224, 14)</c>.</summary>
    public static ImageTransformOptions ReferenceVit { get; } = new() { MaxImageSize = 980, MinImageSize = 224, ImageStride = 14 };

    /// <summary>Creates the pair.</summary>
    /// <param name="vae">The VAE-stream transform (its resize also sets the ViT stream's input).</param>
    /// <param name="vit">The ViT-stream transform; null for a model without an understanding branch.</param>
    public InputImageTransforms(ImageTransform vae, ImageTransform? vit)
    {
        Vae = vae ?? throw new ArgumentNullException(nameof(vae));
        Vit = vit;
    }

    /// <summary>The VAE-stream transform.</summary>
    public ImageTransform Vae { get; }

    /// <summary>The ViT-stream transform; null without an understanding branch.</summary>
    public ImageTransform? Vit { get; }

    /// <summary>
    /// The transforms for <paramref name="config"/>: <paramref name="vae"/> / <paramref name="vit"/> when given, else
    /// the defaults, the default VAE transform's largest side capped at what the model generates
    /// (<c>max_latent_size</c> tokens), so an edit's output fits the model.
    /// </summary>
    /// <param name="config">The model's configuration.</param>
    /// <param name="vae">An explicit VAE transform, or null.</param>
    /// <param name="vit">An explicit ViT transform, or null.</param>
    /// <param name="vaeDefault">The VAE transform when none is given (e.g. <see cref="ReferenceVae"/>).</param>
    /// <param name="vitDefault">The ViT transform when none is given (e.g. <see cref="ReferenceVit"/>).</param>
    /// <returns>The pair (no ViT transform when the model has no ViT).</returns>
    /// <exception cref="ArgumentException">A transform's options are invalid.</exception>
    public static InputImageTransforms For(BagelConfig config, ImageTransformOptions? vae, ImageTransformOptions? vit,
        ImageTransformOptions vaeDefault, ImageTransformOptions vitDefault)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(vaeDefault);
        ArgumentNullException.ThrowIfNull(vitDefault);
        ImageTransformOptions vaeSizes = vae ?? vaeDefault;
        if (vae is null && config.VaeConfig is { } vaeConfig)
        {
            int maxSide = config.MaxLatentSize * vaeConfig.DownsampleFactor * config.LatentPatchSize;
            if (vaeSizes.MaxImageSize > maxSide)
                vaeSizes = vaeSizes with { MaxImageSize = maxSide, MinImageSize = Math.Min(vaeSizes.MinImageSize, maxSide) };
        }
        return new InputImageTransforms(new ImageTransform(vaeSizes), config.VitConfig is null ? null : new ImageTransform(vit ?? vitDefault));
    }

    /// <summary>The picture as the model sees it: resized by the VAE transform (uint8, before normalisation).</summary>
    /// <param name="image">The decoded image.</param>
    /// <returns>The resized image.</returns>
    public RgbImage Resize(RgbImage image) => Vae.Resize(image);

    /// <summary>The two transformed tensors of an input image: the VAE transform's resize first, then each stream's
    /// transform of the resized picture.</summary>
    /// <param name="image">The image.</param>
    /// <param name="vae">Make the VAE tensor too (editing); false for answering.</param>
    /// <returns>The tensors (in the current dispose scope); no ViT tensor without a ViT transform.</returns>
    public ContextImage Prepare(RgbImage image, bool vae)
    {
        ArgumentNullException.ThrowIfNull(image);
        RgbImage resized = Resize(image);
        return new ContextImage(vae ? Vae.Apply(resized) : null, Vit?.Apply(resized));
    }
}
