namespace Bagel.Data.Images;

/// <summary>
/// A decoded image as 8-bit RGB, row-major, channels interleaved (R, G, B per pixel, no padding), independent of the
/// decoding library. This is what the reference holds after <c>pil_img2rgb</c>: a PIL "RGB" image.
/// </summary>
public sealed class RgbImage
{
    /// <summary>Bytes per pixel (R, G, B).</summary>
    public const int Channels = 3;

    /// <summary>Wraps <paramref name="pixels"/> (not copied) as a <paramref name="width"/>×<paramref name="height"/> image.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A side is not positive.</exception>
    /// <exception cref="ArgumentException">The buffer length is not width·height·3.</exception>
    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentNullException.ThrowIfNull(pixels);
        long expected = (long)width * height * Channels;
        if (pixels.LongLength != expected)
            throw new ArgumentException($"An RGB image of {width}x{height} needs {expected} bytes, got {pixels.LongLength}.", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>The pixels: row-major, <c>(y·Width + x)·3 + channel</c>.</summary>
    public byte[] Pixels { get; }

    /// <summary>The pixel at column <paramref name="x"/>, row <paramref name="y"/>.</summary>
    public (byte R, byte G, byte B) GetPixel(int x, int y)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height)
            throw new ArgumentOutOfRangeException(nameof(x), $"({x}, {y}) is outside the {Width}x{Height} image.");
        int i = (y * Width + x) * Channels;
        return (Pixels[i], Pixels[i + 1], Pixels[i + 2]);
    }

    /// <inheritdoc />
    public override string ToString() => $"RgbImage {Width}x{Height}";
}
