namespace Bagel.Data.Images;

/// <summary>
/// The output size of the reference's <c>MaxLongEdgeMinShortEdgeResize</c> (data/transforms.py), reproduced exactly,
/// including its quirks (shared/reference/training.md section 3).
/// </summary>
public static class ImageResizeRule
{
    /// <summary>
    /// The (width, height) an image of <paramref name="width"/>×<paramref name="height"/> is resized to.
    /// Shrinks the long edge to <c>MaxImageSize</c>, then lets the short edge reach <c>MinImageSize</c> (may upscale);
    /// rounds each side to the stride; if the area exceeds <c>MaxPixels / imgNum</c> it scales each side by the
    /// AREA ratio (the reference's quirk: over-shrinks); finally re-checks the long edge.
    /// Rounding is round-half-to-even, as Python's <c>round</c>.
    /// </summary>
    /// <param name="width">Input width (≥ 1).</param>
    /// <param name="height">Input height (≥ 1).</param>
    /// <param name="options">The transform configuration.</param>
    /// <param name="imgNum">The number of images in the sample (only the VLM passes it); default 1.</param>
    public static (int Width, int Height) ComputeResizeSize(int width, int height, ImageTransformOptions options, int imgNum = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(imgNum);

        double scale = Math.Min((double)options.MaxImageSize / Math.Max(width, height), 1.0);
        scale = Math.Max(scale, (double)options.MinImageSize / Math.Min(width, height));
        (long w, long h) = ApplyScale(width, height, scale, options.ImageStride);

        double pixelBudget = (double)options.MaxPixels / imgNum;
        if (w * h > pixelBudget)
        {
            scale = pixelBudget / (w * h);
            (w, h) = ApplyScale(w, h, scale, options.ImageStride);
        }

        if (Math.Max(w, h) > options.MaxImageSize)
        {
            scale = (double)options.MaxImageSize / Math.Max(w, h);
            (w, h) = ApplyScale(w, h, scale, options.ImageStride);
        }
        return (checked((int)w), checked((int)h));
    }

    // _apply_scale: round each side, then _make_divisible: max(stride, round(v / stride) * stride).
    private static (long Width, long Height) ApplyScale(long width, long height, double scale, int stride) =>
        (MakeDivisible(Math.Round(width * scale), stride), MakeDivisible(Math.Round(height * scale), stride));

    private static long MakeDivisible(double value, int stride) =>
        Math.Max(stride, (long)Math.Round(value / stride) * stride);
}
