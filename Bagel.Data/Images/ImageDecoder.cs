using System.Runtime.InteropServices;
using SkiaSharp;

namespace Bagel.Data.Images;

/// <summary>
/// Decodes JPEG (baseline, progressive, grayscale, CMYK/YCCK), PNG (palette + tRNS, interlaced, 16-bit, alpha),
/// WebP (lossy, lossless, VP8X), GIF (first frame) and BMP into an <see cref="RgbImage"/>, the way the reference's
/// <c>pil_img2rgb(Image.open(...))</c> does: transparency is composited onto white, grayscale is expanded to RGB.
/// See <c>Bagel.Data/Images/README.md</c> for the library choice and the departures from the reference.
/// Thread-safe: one instance can serve all loader threads.
/// </summary>
public sealed class ImageDecoder
{
    /// <summary>Creates a decoder with <paramref name="options"/> (default: <see cref="ImageDecodeOptions"/> defaults).</summary>
    public ImageDecoder(ImageDecodeOptions? options = null)
    {
        Options = options ?? new ImageDecodeOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Options.MaxPixels, nameof(options) + "." + nameof(ImageDecodeOptions.MaxPixels));
    }

    /// <summary>The options in force.</summary>
    public ImageDecodeOptions Options { get; }

    /// <summary>Reads and decodes the file at <paramref name="path"/>.</summary>
    /// <exception cref="ImageDecodeException">The file is not a decodable image, is truncated, or is too large.</exception>
    public RgbImage DecodeFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Decode(File.ReadAllBytes(path), path);
    }

    /// <summary>Decodes encoded image bytes; <paramref name="imageSource"/> names them in errors (a path or a row).</summary>
    /// <exception cref="ImageDecodeException">The bytes are not a decodable image, are truncated, or are too large.</exception>
    public RgbImage Decode(byte[] data, string imageSource)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(imageSource);
        using var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream, out SKCodecResult openResult)
            ?? throw new ImageDecodeException(imageSource, ImageDecodeFailure.Undecodable,
                $"'{imageSource}' is not a decodable image ({data.Length} bytes, header result {openResult}). " +
                "Supported: JPEG, PNG, WebP, GIF, BMP. Remove or re-encode the file.");

        int width = codec.Info.Width, height = codec.Info.Height;
        long pixelCount = (long)width * height;
        if (pixelCount > Options.MaxPixels || pixelCount * 4 > Array.MaxLength)
            throw new ImageDecodeException(imageSource, ImageDecodeFailure.TooLarge,
                $"'{imageSource}' declares {width}x{height} = {pixelCount} pixels, above the limit of {Math.Min(Options.MaxPixels, Array.MaxLength / 4)} " +
                $"({nameof(ImageDecodeOptions)}.{nameof(ImageDecodeOptions.MaxPixels)}); it was not decoded (decompression-bomb guard).");

        // A 16-bit PNG comes out as its high bytes, as PIL's "RGB;16B"/"RGBA;16B" raw modes read it.
        byte[] rgba = DecodeRgba8(codec, data, imageSource);

        // pil_img2rgb composites onto white only for RGBA images or ones with a transparency entry; a PNG in PIL's
        // "LA" mode (gray + alpha, colour type 4) goes through convert("RGB"), which drops the alpha.
        bool composite = codec.Info.AlphaType != SKAlphaType.Opaque
                         && !(codec.EncodedFormat == SKEncodedImageFormat.Png && PngHeader.ColorType(data) == PngHeader.GrayAlphaColorType);
        var image = new RgbImage(width, height, AlphaCompositor.ToRgb(rgba, composite));

        return Options.ApplyExifOrientation ? ExifOrientation.Apply(image, (int)codec.EncodedOrigin) : image;
    }

    private byte[] DecodeRgba8(SKCodec codec, byte[] data, string imageSource)
    {
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var pixels = new byte[info.Width * info.Height * 4]; // bounded by the size check in Decode
        Read(codec, info, data, pixels, imageSource);
        return pixels;
    }

    private void Read(SKCodec codec, SKImageInfo info, byte[] data, byte[] destination, string imageSource)
    {
        SKCodecResult result;
        var pin = GCHandle.Alloc(destination, GCHandleType.Pinned);
        try
        {
            result = codec.GetPixels(info, pin.AddrOfPinnedObject());
        }
        finally
        {
            pin.Free();
        }
        switch (result)
        {
            case SKCodecResult.Success:
                return;
            case SKCodecResult.IncompleteInput when Options.AllowTruncated:
                return;
            // Skia reports a partial decode as IncompleteInput; some truncations (a progressive JPEG) fail outright,
            // so a failed decode of data that lacks its format's end marker is reported as truncated too.
            case SKCodecResult.IncompleteInput:
            case not SKCodecResult.Success when EndMarker.IsMissing(codec.EncodedFormat, data):
                throw new ImageDecodeException(imageSource, ImageDecodeFailure.Truncated,
                    $"'{imageSource}' is truncated: its {codec.EncodedFormat} header declares {info.Width}x{info.Height} but the pixel data ends early. " +
                    $"Re-download or re-encode it, or set {nameof(ImageDecodeOptions)}.{nameof(ImageDecodeOptions.AllowTruncated)} to accept a partly filled image.");
            default:
                throw new ImageDecodeException(imageSource, ImageDecodeFailure.Undecodable,
                    $"'{imageSource}' could not be decoded: its {codec.EncodedFormat} data is corrupt or unsupported ({result}). Remove or re-encode the file.");
        }
    }
}
