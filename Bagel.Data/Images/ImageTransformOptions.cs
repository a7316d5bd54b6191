namespace Bagel.Data.Images;

/// <summary>
/// The reference's <c>ImageTransform(max_image_size, min_image_size, image_stride, max_pixels, image_mean, image_std)</c>
/// (data/transforms.py). Defaults are the T2I / edit-VAE configuration of data/configs/example.yaml; the presets give
/// the other shipped ones.
/// </summary>
public sealed record ImageTransformOptions
{
    /// <summary>The reference's default <c>max_pixels = 14*14*9*1024</c> (1,806,336): 9 Ki ViT patches of 14².</summary>
    public const int ReferenceMaxPixels = 14 * 14 * 9 * 1024;

    /// <summary>The VAE stride: VAE downsample 8 × latent patch 2.</summary>
    public const int VaeStride = 16;

    /// <summary>The ViT stride: SigLIP patch size 14.</summary>
    public const int VitStride = 14;

    /// <summary>Upper bound of the long edge after resizing (<c>max_image_size</c>); default 1024.</summary>
    public int MaxImageSize { get; init; } = 1024;

    /// <summary>Lower bound of the short edge, which may upscale (<c>min_image_size</c>); default 512.</summary>
    public int MinImageSize { get; init; } = 512;

    /// <summary>Both output sides are multiples of this (<c>image_stride</c>); default 16 (<see cref="VaeStride"/>).</summary>
    public int ImageStride { get; init; } = VaeStride;

    /// <summary>The pixel budget, divided by the image count of the sample (<c>max_pixels</c>); default <see cref="ReferenceMaxPixels"/>.</summary>
    public int MaxPixels { get; init; } = ReferenceMaxPixels;

    /// <summary>Per-channel mean subtracted after scaling to [0, 1] (<c>image_mean</c>); default 0.5 each.</summary>
    public IReadOnlyList<float> ImageMean { get; init; } = [0.5f, 0.5f, 0.5f];

    /// <summary>Per-channel divisor after subtracting the mean (<c>image_std</c>); default 0.5 each.</summary>
    public IReadOnlyList<float> ImageStd { get; init; } = [0.5f, 0.5f, 0.5f];

    /// <summary>T2I VAE images: 1024 / 512 / stride 16.</summary>
    public static ImageTransformOptions TextToImage { get; } = new();

    /// <summary>Editing VAE images: 1024 / 512 / stride 16.</summary>
    public static ImageTransformOptions EditVae { get; } = new();

    /// <summary>Editing ViT images: 518 / 224 / stride 14.</summary>
    public static ImageTransformOptions EditVit { get; } = new() { MaxImageSize = 518, MinImageSize = 224, ImageStride = VitStride };

    /// <summary>VLM ViT images: 980 / 378 / stride 14, max_pixels 2,007,040.</summary>
    public static ImageTransformOptions Vlm { get; } = new() { MaxImageSize = 980, MinImageSize = 378, ImageStride = VitStride, MaxPixels = 2_007_040 };

    /// <summary>
    /// The most patches (of <see cref="ImageStride"/> pixels) a resized image can have along one side: the resize
    /// rule's last step rounds <see cref="MaxImageSize"/> to the stride (half to even), so this is that quotient.
    /// </summary>
    public int MaxPatchesPerSide => Math.Max(1, (int)Math.Round((double)MaxImageSize / ImageStride));

    /// <summary>
    /// Throws when resized images can have more patches per side than the model's position grid
    /// (<c>max_latent_size</c> for VAE images, <c>vit_max_num_patch_per_side</c> = 70 for ViT images). The reference
    /// does not check this: a too-tall image fails as a CUDA assert and a too-wide one silently aliases columns onto
    /// the next row (issue #131).
    /// </summary>
    /// <param name="maxNumPatchesPerSide">The model's grid side.</param>
    /// <param name="gridName">The setting's name, for the message (e.g. "max_latent_size").</param>
    /// <exception cref="ArgumentException">The grid is too small for <see cref="MaxImageSize"/>.</exception>
    public void EnsureFitsPositionGrid(int maxNumPatchesPerSide, string gridName)
    {
        if (MaxPatchesPerSide > maxNumPatchesPerSide)
            throw new ArgumentException(
                $"{nameof(MaxImageSize)} {MaxImageSize} with stride {ImageStride} gives up to {MaxPatchesPerSide} patches per side, " +
                $"but {gridName} is {maxNumPatchesPerSide}. Raise {gridName} to at least {MaxPatchesPerSide} or lower {nameof(MaxImageSize)} " +
                $"to at most {maxNumPatchesPerSide * ImageStride}.");
    }

    /// <summary>Throws one <see cref="ArgumentException"/> listing every invalid value.</summary>
    public void Validate()
    {
        var errors = new List<string>();
        if (ImageStride <= 0) errors.Add($"{nameof(ImageStride)} must be positive (got {ImageStride}).");
        if (MinImageSize <= 0) errors.Add($"{nameof(MinImageSize)} must be positive (got {MinImageSize}).");
        if (MaxImageSize < ImageStride) errors.Add($"{nameof(MaxImageSize)} ({MaxImageSize}) must be at least {nameof(ImageStride)} ({ImageStride}).");
        if (MaxPixels <= 0) errors.Add($"{nameof(MaxPixels)} must be positive (got {MaxPixels}).");
        if (ImageMean is null || ImageMean.Count != 3) errors.Add($"{nameof(ImageMean)} needs 3 values (R, G, B).");
        if (ImageStd is null || ImageStd.Count != 3) errors.Add($"{nameof(ImageStd)} needs 3 values (R, G, B).");
        else if (ImageStd.Any(s => s == 0f || !float.IsFinite(s))) errors.Add($"{nameof(ImageStd)} values must be finite and non-zero.");
        if (errors.Count > 0)
            throw new ArgumentException("Invalid image transform options: " + string.Join(" ", errors));
    }
}
