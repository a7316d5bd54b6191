using System.Runtime.InteropServices;
using SkiaSharp;

namespace Bagel.Data.Example;

/// <summary>Draws an <see cref="ExampleScene"/> with SkiaSharp and encodes it as PNG or JPEG bytes.</summary>
internal static class ExampleSceneRenderer
{
    /// <summary>Below this a small shape would be a few pixels wide.</summary>
    public const int MinSide = 16;

    /// <summary>Keeps one picture's RGBA buffer to 64 MiB.</summary>
    public const int MaxSide = 4096;

    // Shape extent as a fraction of the picture's shorter side; the large one still fits inside a corner cell.
    private const double LargeFraction = 0.45, SmallFraction = 0.25;

    /// <summary>Renders and encodes one picture.</summary>
    /// <param name="scene">What to draw.</param>
    /// <param name="format">PNG or JPEG.</param>
    /// <param name="jpegQuality">1..100.</param>
    /// <param name="noise">Per-channel noise amplitude (0 for flat colours).</param>
    /// <param name="noiseRandom">The picture's own noise generator.</param>
    public static byte[] Encode(ExampleScene scene, ExampleImageFormat format, int jpegQuality, int noise, ExampleRandom noiseRandom)
    {
        var info = new SKImageInfo(scene.Width, scene.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(ToSk(scene.Background));
            using var paint = new SKPaint { Color = ToSk(scene.Color), IsAntialias = true, Style = SKPaintStyle.Fill };
            Draw(canvas, paint, scene);
        }
        if (noise > 0) AddNoise(bitmap, noise, ref noiseRandom);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format == ExampleImageFormat.Png ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg,
                                      format == ExampleImageFormat.Png ? 100 : jpegQuality)
                         ?? throw new InvalidOperationException($"SkiaSharp could not encode a {scene.Width}x{scene.Height} {format} picture.");
        return data.ToArray();
    }

    private static void Draw(SKCanvas canvas, SKPaint paint, ExampleScene scene)
    {
        float shorter = Math.Min(scene.Width, scene.Height);
        float r = (float)(shorter * (scene.Large ? LargeFraction : SmallFraction) / 2);
        float cx = (float)(scene.Place.X * scene.Width), cy = (float)(scene.Place.Y * scene.Height);
        switch (scene.Shape)
        {
            case "circle":
                canvas.DrawCircle(cx, cy, r, paint);
                break;
            case "square":
                canvas.DrawRect(cx - r, cy - r, 2 * r, 2 * r, paint);
                break;
            case "triangle":
                DrawPolygon(canvas, paint, (cx, cy - r), (cx + r, cy + r), (cx - r, cy + r));
                break;
            case "diamond":
                DrawPolygon(canvas, paint, (cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy));
                break;
            case "cross":
                canvas.DrawRect(cx - r, cy - r / 3, 2 * r, 2 * r / 3, paint);
                canvas.DrawRect(cx - r / 3, cy - r, 2 * r / 3, 2 * r, paint);
                break;
            case "ring":
                using (var stroke = paint.Clone())
                {
                    stroke.Style = SKPaintStyle.Stroke;
                    stroke.StrokeWidth = r / 3;
                    canvas.DrawCircle(cx, cy, r - r / 6, stroke);
                }
                break;
            default:
                throw new InvalidOperationException($"no drawing for shape '{scene.Shape}'.");
        }
    }

    private static void DrawPolygon(SKCanvas canvas, SKPaint paint, params (float X, float Y)[] points)
    {
        using var path = new SKPath();
        path.MoveTo(points[0].X, points[0].Y);
        foreach (var (x, y) in points.Skip(1)) path.LineTo(x, y);
        path.Close();
        canvas.DrawPath(path, paint);
    }

    private static void AddNoise(SKBitmap bitmap, int amplitude, ref ExampleRandom random)
    {
        var pixels = new byte[bitmap.ByteCount];
        IntPtr address = bitmap.GetPixels();
        Marshal.Copy(address, pixels, 0, pixels.Length);
        int span = 2 * amplitude + 1;
        for (int i = 0; i < pixels.Length; i += 4)
        {
            ulong bits = random.NextULong();
            for (int c = 0; c < 3; c++)
            {
                int delta = (int)((bits >> (16 * c) & 0xFFFF) % (ulong)span) - amplitude;
                pixels[i + c] = (byte)Math.Clamp(pixels[i + c] + delta, 0, 255);
            }
        }
        Marshal.Copy(pixels, 0, address, pixels.Length);
        bitmap.NotifyPixelsChanged();
    }

    private static SKColor ToSk(ExampleColor color) => new(color.R, color.G, color.B);
}
