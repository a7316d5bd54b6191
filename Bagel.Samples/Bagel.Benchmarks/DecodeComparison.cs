using System.Diagnostics;
using System.Globalization;
using Bagel.Data.Images;
using SkiaSharp;

namespace Bagel.Benchmarks;

/// <summary>
/// Single-threaded image rates on the same JPEG files: SkiaSharp's raw decode, our decode + resize (the ViT transform
/// of the editing and VLM groups), and, through <c>/usr/bin/python3</c> when PIL is installed, PIL's raw decode and
/// decode + bicubic resize to the same size (the reference's path). Files are read into memory first, so disk time is
/// not measured.
/// </summary>
internal static class DecodeComparison
{
    private const string Python = "/usr/bin/python3";

    // Decode each file, then decode + convert('RGB') + bicubic resize; prints both rates as images/s.
    private const string PilScript = """
        import io, sys, time
        from PIL import Image
        w, h, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
        data = [open(f, 'rb').read() for f in files]
        def rate(work):
            n, start = 0, time.perf_counter()
            while n < len(data) or time.perf_counter() - start < 1.0:
                work(data[n % len(data)]); n += 1
            return n / (time.perf_counter() - start)
        def raw(b):
            im = Image.open(io.BytesIO(b)); im.load()
        def resized(b):
            Image.open(io.BytesIO(b)).convert('RGB').resize((w, h), Image.BICUBIC)
        print(f"{rate(raw):.3f} {rate(resized):.3f}")
        """;

    public static void Run(IReadOnlyList<string> files, bool usePython)
    {
        if (files.Count == 0)
        {
            Console.WriteLine("decode comparison: no JPEG files.");
            return;
        }
        var data = files.Select(File.ReadAllBytes).ToList();
        var transform = new ImageTransform(ImageTransformOptions.EditVit);
        var decoder = new ImageDecoder();
        RgbImage first = decoder.Decode(data[0], files[0]);
        var (width, height) = transform.ComputeResizeSize(first.Width, first.Height);
        Console.WriteLine($"JPEG decode, single thread, {files.Count} files of {first.Width}x{first.Height} " +
                          $"({data.Average(d => d.Length) / 1024:F0} KiB average), resize target {width}x{height} (stride 14, max 518, min 224):");

        double skiaRaw = Rate(data, bytes =>
        {
            using var bitmap = SKBitmap.Decode(bytes);
        });
        double oursResized = Rate(data, bytes => transform.Resize(decoder.Decode(bytes, "benchmark")));
        Console.WriteLine($"  SkiaSharp raw decode:                 {skiaRaw,8:F1} images/s");
        Console.WriteLine($"  Bagel.Data decode + RGB + resize:     {oursResized,8:F1} images/s");

        if (!usePython)
        {
            Console.WriteLine("  PIL: skipped (--no-python)");
            return;
        }
        if (Pil(width, height, files) is not { } pil)
        {
            Console.WriteLine("  PIL not available (needs /usr/bin/python3 with python3-pil)");
            return;
        }
        Console.WriteLine($"  PIL raw decode:                       {pil.Raw,8:F1} images/s");
        Console.WriteLine($"  PIL decode + convert + resize:        {pil.Resized,8:F1} images/s");
        Console.WriteLine($"  ratio SkiaSharp / PIL raw decode:     {skiaRaw / pil.Raw,8:F2}x");
        Console.WriteLine($"  ratio ours / PIL decode + resize:     {oursResized / pil.Resized,8:F2}x");
    }

    /// <summary>Images per second of <paramref name="work"/> over every file at least once and at least one second.</summary>
    private static double Rate(IReadOnlyList<byte[]> data, Action<byte[]> work)
    {
        work(data[0]); // warm-up (JIT, codec tables)
        var clock = Stopwatch.StartNew();
        int n = 0;
        while (n < data.Count || clock.Elapsed.TotalSeconds < 1.0) work(data[n++ % data.Count]);
        return n / clock.Elapsed.TotalSeconds;
    }

    private static (double Raw, double Resized)? Pil(int width, int height, IReadOnlyList<string> files)
    {
        if (!File.Exists(Python)) return null;
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in (string[])["-c", PilScript, width.ToString(CultureInfo.InvariantCulture), height.ToString(CultureInfo.InvariantCulture), .. files])
            start.ArgumentList.Add(arg);
        using Process process = Process.Start(start)!;
        Task<string> error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            string detail = error.GetAwaiter().GetResult().Trim().Split('\n')[^1];
            Console.WriteLine($"  ({Python} failed: {detail})");
            return null;
        }
        string[] parts = output.Trim().Split(' ');
        return (double.Parse(parts[0], CultureInfo.InvariantCulture), double.Parse(parts[1], CultureInfo.InvariantCulture));
    }
}
