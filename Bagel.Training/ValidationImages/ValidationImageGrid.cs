using SkiaSharp;
using TorchSharp;

namespace Bagel.Training.ValidationImages;

/// <summary>One cell of a <see cref="ValidationImageGrid"/>: an image and the caption drawn under it.</summary>
/// <param name="Pixels">The image, [H, W, 3] uint8 on the CPU (as <c>BagelGenerator.TextToImage</c> returns it); not disposed here.</param>
/// <param name="Caption">The text drawn under the image (the prompt).</param>
public sealed record ValidationGridCell(torch.Tensor Pixels, string Caption);

/// <summary>
/// Lays images out in a grid (up to <see cref="MaxColumns"/> per row), each with its caption drawn under it in a
/// built-in 5×7 capitals font (no system font needed; lower case is drawn as capitals, so the sidecar file carries the
/// exact text), and encodes it as PNG with SkiaSharp.
/// </summary>
public static class ValidationImageGrid
{
    /// <summary>Most images per grid row.</summary>
    public const int MaxColumns = 4;

    /// <summary>Caption lines under each image; longer captions end in "...".</summary>
    public const int CaptionLines = 4;

    /// <summary>Narrowest cell in pixels: a caption gets at least this much width, even under a 64-pixel image.</summary>
    public const int MinCellWidth = 128;

    private const int Gap = 4;

    /// <summary>Composes and encodes the grid.</summary>
    /// <param name="cells">The images (all the same size) and their captions, in reading order.</param>
    /// <returns>The PNG bytes and the grid's size.</returns>
    /// <exception cref="ArgumentException">No cells, an image that is not [H, W, 3] uint8, or images of different sizes.</exception>
    public static (byte[] Png, int Height, int Width) Encode(IReadOnlyList<ValidationGridCell> cells)
    {
        ArgumentNullException.ThrowIfNull(cells);
        if (cells.Count == 0) throw new ArgumentException("A validation grid needs at least one image.", nameof(cells));
        torch.Tensor first = cells[0].Pixels;
        foreach (ValidationGridCell cell in cells)
        {
            if (cell.Pixels.dim() != 3 || cell.Pixels.shape[2] != 3 || cell.Pixels.dtype != torch.ScalarType.Byte)
                throw new ArgumentException($"A grid image must be [H, W, 3] uint8; got [{string.Join(", ", cell.Pixels.shape)}] {cell.Pixels.dtype}.", nameof(cells));
            if (cell.Pixels.shape[0] != first.shape[0] || cell.Pixels.shape[1] != first.shape[1])
                throw new ArgumentException($"Grid images must share one size; got {first.shape[0]}×{first.shape[1]} and {cell.Pixels.shape[0]}×{cell.Pixels.shape[1]}.", nameof(cells));
        }
        int imageHeight = (int)first.shape[0], imageWidth = (int)first.shape[1];
        int scale = Math.Max(1, imageWidth / 192);
        int cellWidth = Math.Max(imageWidth, MinCellWidth);
        int captionHeight = CaptionLines * BitmapFont.LineHeight * scale + Gap;
        int columns = Math.Min(MaxColumns, cells.Count), rows = (cells.Count + columns - 1) / columns;
        int width = columns * cellWidth + (columns + 1) * Gap;
        int height = rows * (imageHeight + captionHeight) + (rows + 1) * Gap;
        int stride = width * 4;
        byte[] rgba = new byte[stride * height];
        Array.Fill(rgba, (byte)255);

        for (int i = 0; i < cells.Count; i++)
        {
            int cellX = Gap + (i % columns) * (cellWidth + Gap), cellY = Gap + (i / columns) * (imageHeight + captionHeight + Gap);
            byte[] pixels = cells[i].Pixels.contiguous().data<byte>().ToArray();
            int imageX = cellX + (cellWidth - imageWidth) / 2;
            for (int y = 0; y < imageHeight; y++)
                for (int x = 0; x < imageWidth; x++)
                {
                    int source = (y * imageWidth + x) * 3, target = (cellY + y) * stride + (imageX + x) * 4;
                    rgba[target] = pixels[source];
                    rgba[target + 1] = pixels[source + 1];
                    rgba[target + 2] = pixels[source + 2];
                }
            int charsPerLine = Math.Max(1, (cellWidth - 2 * scale) / (BitmapFont.Advance * scale));
            IReadOnlyList<string> lines = Wrap(cells[i].Caption, charsPerLine, CaptionLines);
            for (int l = 0; l < lines.Count; l++)
                BitmapFont.Draw(rgba, stride, width, height, lines[l], cellX + scale, cellY + imageHeight + 2 + l * BitmapFont.LineHeight * scale, scale, (0, 0, 0));
        }

        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using SKImage image = SKImage.FromPixelCopy(info, rgba, stride)
            ?? throw new InvalidOperationException($"SkiaSharp could not wrap a {width}×{height} grid.");
        using SKData data = image.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode the {width}×{height} grid as PNG.");
        return (data.ToArray(), height, width);
    }

    /// <summary>Greedy word wrap into at most <paramref name="maxLines"/> lines of <paramref name="width"/> characters;
    /// words longer than a line are cut; text that does not fit ends in "...".</summary>
    internal static IReadOnlyList<string> Wrap(string text, int width, int maxLines)
    {
        var lines = new List<string>();
        string current = "";
        foreach (string word in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            string rest = word;
            while (rest.Length > 0)
            {
                string candidate = current.Length == 0 ? rest : current + " " + rest;
                if (candidate.Length <= width)
                {
                    current = candidate;
                    rest = "";
                }
                else if (current.Length > 0)
                {
                    lines.Add(current);
                    current = "";
                }
                else
                {
                    lines.Add(rest[..width]);
                    rest = rest[width..];
                }
            }
        }
        if (current.Length > 0) lines.Add(current);
        if (lines.Count <= maxLines) return lines;
        List<string> kept = lines.Take(maxLines).ToList();
        string last = kept[^1];
        kept[^1] = (last.Length + 3 <= width ? last : last[..Math.Max(0, width - 3)]) + "...";
        return kept;
    }
}
