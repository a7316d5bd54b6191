using SkiaSharp;
using TorchSharp;

namespace Bagel.Training.ValidationImages;

/// <summary>One cell of a <see cref="ValidationImageGrid"/>: an image (an edit's input beside it) and the caption drawn under it.</summary>
/// <param name="Pixels">The image, [H, W, 3] uint8 on the CPU (as <c>BagelGenerator.TextToImage</c> returns it); not disposed here.</param>
/// <param name="Caption">The text drawn under the image (the prompt, the instruction, or a question and its answer).</param>
/// <param name="Input">An edit's input image, [H, W, 3] uint8, drawn left of <paramref name="Pixels"/>; null for one image.</param>
public sealed record ValidationGridCell(torch.Tensor Pixels, string Caption, torch.Tensor? Input = null);

/// <summary>
/// Lays images out in a grid (up to <see cref="MaxColumns"/> per row), each with its caption drawn under it in a
/// built-in 5×7 capitals font (no system font needed; lower case is drawn as capitals, so the sidecar file carries the
/// exact text), and encodes it as PNG with SkiaSharp. Every cell is as large as the largest content (an edit's input
/// and output side by side, images of different sizes centred), with room for the longest caption's lines.
/// </summary>
public static class ValidationImageGrid
{
    /// <summary>Most images per grid row.</summary>
    public const int MaxColumns = 4;

    /// <summary>Caption lines under each image when every caption fits in them; longer captions (answers) get up to
    /// <see cref="MaxCaptionLines"/>.</summary>
    public const int CaptionLines = 4;

    /// <summary>Most caption lines under an image; longer captions end in "..." (the sidecar has the full text).</summary>
    public const int MaxCaptionLines = 10;

    /// <summary>Narrowest cell in pixels: a caption gets at least this much width, even under a 64-pixel image.</summary>
    public const int MinCellWidth = 128;

    private const int Gap = 4;

    /// <summary>Composes and encodes the grid.</summary>
    /// <param name="cells">The images and their captions, in reading order.</param>
    /// <returns>The PNG bytes and the grid's size.</returns>
    /// <exception cref="ArgumentException">No cells, or an image that is not [H, W, 3] uint8.</exception>
    public static (byte[] Png, int Height, int Width) Encode(IReadOnlyList<ValidationGridCell> cells)
    {
        ArgumentNullException.ThrowIfNull(cells);
        if (cells.Count == 0) throw new ArgumentException("A validation grid needs at least one image.", nameof(cells));
        foreach (ValidationGridCell cell in cells)
            foreach (torch.Tensor? picture in new[] { cell.Pixels, cell.Input })
                if (picture is not null && (picture.dim() != 3 || picture.shape[2] != 3 || picture.dtype != torch.ScalarType.Byte))
                    throw new ArgumentException($"A grid image must be [H, W, 3] uint8; got [{string.Join(", ", picture.shape)}] {picture.dtype}.", nameof(cells));
        int imageHeight = cells.Max(c => (int)Math.Max(c.Pixels.shape[0], c.Input?.shape[0] ?? 0));
        int widestImage = cells.Max(c => (int)Math.Max(c.Pixels.shape[1], c.Input?.shape[1] ?? 0));
        int scale = Math.Max(1, widestImage / 192);
        int cellWidth = Math.Max(cells.Max(ContentWidth), MinCellWidth);
        int charsPerLine = Math.Max(1, (cellWidth - 2 * scale) / (BitmapFont.Advance * scale));
        IReadOnlyList<string>[] captions = [.. cells.Select(c => Wrap(c.Caption, charsPerLine, MaxCaptionLines))];
        int captionLines = Math.Clamp(captions.Max(c => c.Count), CaptionLines, MaxCaptionLines);
        int captionHeight = captionLines * BitmapFont.LineHeight * scale + Gap;
        int columns = Math.Min(MaxColumns, cells.Count), rows = (cells.Count + columns - 1) / columns;
        int width = columns * cellWidth + (columns + 1) * Gap;
        int height = rows * (imageHeight + captionHeight) + (rows + 1) * Gap;
        int stride = width * 4;
        byte[] rgba = new byte[stride * height];
        Array.Fill(rgba, (byte)255);

        for (int i = 0; i < cells.Count; i++)
        {
            int cellX = Gap + (i % columns) * (cellWidth + Gap), cellY = Gap + (i / columns) * (imageHeight + captionHeight + Gap);
            int x = cellX + (cellWidth - ContentWidth(cells[i])) / 2;
            if (cells[i].Input is { } input)
            {
                Blit(rgba, stride, input, x, cellY + (imageHeight - (int)input.shape[0]) / 2);
                x += (int)input.shape[1] + Gap;
            }
            Blit(rgba, stride, cells[i].Pixels, x, cellY + (imageHeight - (int)cells[i].Pixels.shape[0]) / 2);
            IReadOnlyList<string> lines = captions[i];
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

    /// <summary>The width of a cell's images: the image, or an edit's input and output with a gap between.</summary>
    private static int ContentWidth(ValidationGridCell cell) =>
        (int)cell.Pixels.shape[1] + (cell.Input is { } input ? (int)input.shape[1] + Gap : 0);

    /// <summary>Copies an [H, W, 3] uint8 image into the RGBA buffer with its top left corner at (x, y).</summary>
    private static void Blit(byte[] rgba, int stride, torch.Tensor image, int x0, int y0)
    {
        int h = (int)image.shape[0], w = (int)image.shape[1];
        using var scope = torch.NewDisposeScope();
        byte[] pixels = image.contiguous().data<byte>().ToArray();
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int source = (y * w + x) * 3, target = (y0 + y) * stride + (x0 + x) * 4;
                rgba[target] = pixels[source];
                rgba[target + 1] = pixels[source + 1];
                rgba[target + 2] = pixels[source + 2];
            }
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
