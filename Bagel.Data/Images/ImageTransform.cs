using Bagel.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Data.Images;

/// <summary>
/// The reference's <c>ImageTransform</c> (data/transforms.py): resize by <see cref="ImageResizeRule"/> with PIL's
/// bicubic filter (<see cref="BicubicResampler"/>), then to a float CHW tensor in [0, 1], then
/// <c>(x − mean) / std</c> (→ [−1, 1] with the defaults). No augmentation, as in the reference.
/// </summary>
public sealed class ImageTransform
{
    private readonly float[][] _lookup;

    /// <summary>Creates the transform; the options are validated here.</summary>
    /// <exception cref="ArgumentException">An option is invalid (all problems are listed).</exception>
    public ImageTransform(ImageTransformOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        // One table per channel: value v → (v / 255 − mean) / std, each step in float32 like ToTensor + Normalize.
        _lookup = new float[3][];
        for (int c = 0; c < 3; c++)
        {
            var table = new float[256];
            float mean = options.ImageMean[c], std = options.ImageStd[c];
            for (int v = 0; v < 256; v++)
            {
                float unit = v / 255f;
                table[v] = (unit - mean) / std;
            }
            _lookup[c] = table;
        }
    }

    /// <summary>The configuration.</summary>
    public ImageTransformOptions Options { get; }

    /// <summary>The output size for an input of <paramref name="width"/>×<paramref name="height"/>.</summary>
    public (int Width, int Height) ComputeResizeSize(int width, int height, int imgNum = 1) =>
        ImageResizeRule.ComputeResizeSize(width, height, Options, imgNum);

    /// <summary>Resizes <paramref name="image"/> to <see cref="ComputeResizeSize"/> (uint8, before normalisation).</summary>
    /// <param name="image">The decoded image.</param>
    /// <param name="imgNum">The number of images in the sample (VLM only); default 1.</param>
    public RgbImage Resize(RgbImage image, int imgNum = 1)
    {
        ArgumentNullException.ThrowIfNull(image);
        (int w, int h) = ComputeResizeSize(image.Width, image.Height, imgNum);
        return BicubicResampler.Resize(image, w, h);
    }

    /// <summary>The normalised pixels of <paramref name="image"/> as float32 CHW, without resizing.</summary>
    public float[] Normalize(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int plane = image.Width * image.Height;
        var chw = new float[3 * plane];
        byte[] src = image.Pixels;
        for (int c = 0; c < 3; c++)
        {
            float[] table = _lookup[c];
            int offset = c * plane;
            for (int i = 0; i < plane; i++) chw[offset + i] = table[src[i * 3 + c]];
        }
        return chw;
    }

    /// <summary>The normalised pixels of <paramref name="image"/> as a float32 tensor [3, H, W] on the CPU, without resizing.</summary>
    public Tensor ToTensor(RgbImage image)
    {
        TorchRuntime.EnsureLoaded();
        return torch.tensor(Normalize(image), [3, image.Height, image.Width], ScalarType.Float32);
    }

    /// <summary>Resize then normalise: a float32 tensor [3, H, W] with both sides multiples of the stride. The caller disposes it.</summary>
    /// <param name="image">The decoded image.</param>
    /// <param name="imgNum">The number of images in the sample (VLM only); default 1.</param>
    public Tensor Apply(RgbImage image, int imgNum = 1) => ToTensor(Resize(image, imgNum));
}
