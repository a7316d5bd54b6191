namespace Bagel.Data.Images;

/// <summary>Reads the IHDR colour type, which Skia does not report.</summary>
internal static class PngHeader
{
    /// <summary>PNG colour type 4: grayscale with alpha (PIL mode "LA").</summary>
    public const int GrayAlphaColorType = 4;

    // 8-byte signature, 4-byte chunk length, "IHDR", width (4), height (4), bit depth (1), then colour type.
    private const int ColorTypeOffset = 25;

    /// <summary>The IHDR colour type, or -1 when the header is too short.</summary>
    public static int ColorType(byte[] data) => data.Length > ColorTypeOffset ? data[ColorTypeOffset] : -1;
}
