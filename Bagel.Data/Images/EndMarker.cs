using System.Buffers.Binary;
using SkiaSharp;

namespace Bagel.Data.Images;

/// <summary>Tells whether encoded image data stops before its format's end marker, i.e. was cut off.</summary>
internal static class EndMarker
{
    /// <summary>How far from the end the marker is looked for: writers may pad or append a few bytes after it.</summary>
    private const int TailWindow = 64;

    /// <summary>True when <paramref name="data"/> of <paramref name="format"/> visibly lacks its end; false when unknown.</summary>
    public static bool IsMissing(SKEncodedImageFormat format, byte[] data)
    {
        ReadOnlySpan<byte> tail = data.AsSpan(Math.Max(0, data.Length - TailWindow));
        return format switch
        {
            SKEncodedImageFormat.Jpeg => tail.IndexOf([(byte)0xFF, (byte)0xD9]) < 0,                 // EOI
            SKEncodedImageFormat.Png => tail.IndexOf("IEND"u8) < 0,
            SKEncodedImageFormat.Gif => data.Length == 0 || data[^1] != 0x3B,                         // trailer ';'
            SKEncodedImageFormat.Webp => data.Length < 8 || BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(4)) > data.Length - 8L, // RIFF size
            _ => false,
        };
    }
}
