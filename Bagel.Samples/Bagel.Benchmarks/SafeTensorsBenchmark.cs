using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Bagel.Core.Native;
using Bagel.Core.SafeTensors;
using TorchSharp;

namespace Bagel.Benchmarks;

/// <summary>
/// The 'safetensors' benchmark: (1) streams a large F32 file through <see cref="SafeTensorsWriter"/> and reports
/// the writer's peak RSS; (2) in a child process, measures RSS growth from opening the file and reading one tensor;
/// (3) compares sequential-load throughput of the reader against a plain FileStream read, warm and cold.
/// </summary>
internal static class SafeTensorsBenchmark
{
    /// <summary>The hidden subcommand the child process runs.</summary>
    public const string ProbeCommand = "safetensors-probe";

    private const int DefaultTensorCount = 512;
    private const int DefaultTensorMib = 4;
    private const int PlainReadBufferBytes = 4 << 20;

    public static int Run(string[] args)
    {
        string? folder = null;
        int tensorCount = DefaultTensorCount, tensorMib = DefaultTensorMib;
        bool keep = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--folder": folder = args[++i]; break;
                case "--tensors": tensorCount = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--tensor-mb": tensorMib = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--keep": keep = true; break;
                default:
                    Console.Error.WriteLine($"safetensors: unknown option '{args[i]}'");
                    return 2;
            }
        }
        bool ownFolder = folder is null;
        folder ??= Directory.CreateTempSubdirectory("bagel-bench-").FullName;
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, "bench.safetensors");
        try
        {
            Write(path, tensorCount, tensorMib);
            int probe = Probe(path, $"t{tensorCount / 2:D5}");
            if (probe != 0) return probe;
            Throughput(path);
            return 0;
        }
        finally
        {
            if (!keep)
            {
                File.Delete(path);
                if (ownFolder) Directory.Delete(folder, recursive: true);
                Console.WriteLine($"deleted {path}");
            }
        }
    }

    private static void Write(string path, int tensorCount, int tensorMib)
    {
        long elements = tensorMib * 1048576L / sizeof(float);
        var entries = Enumerable.Range(0, tensorCount).Select(i => new SafeTensorsEntry($"t{i:D5}", SafeTensorDType.F32, [elements]));
        float[] chunk = new float[elements];
        var clock = Stopwatch.StartNew();
        using (SafeTensorsWriter writer = SafeTensorsWriter.Create(path, entries, new Dictionary<string, string> { ["format"] = "pt" }))
        {
            for (int t = 0; t < tensorCount; t++)
            {
                // Generated chunk by chunk: only this one 4 MB buffer exists.
                for (long e = 0; e < elements; e++) chunk[e] = t + e * 1e-6f;
                writer.WriteBytes(MemoryMarshal.AsBytes(chunk.AsSpan()));
            }
            writer.Commit();
        }
        clock.Stop();
        long bytes = new FileInfo(path).Length;
        Console.WriteLine($"write: {tensorCount} x {tensorMib} MiB F32 = {ProcessMemory.Mib(bytes)} in {clock.Elapsed.TotalSeconds:F2} s " +
                          $"({bytes / 1048576.0 / clock.Elapsed.TotalSeconds:F0} MiB/s, including fsync)");
        Console.WriteLine($"write: peak RSS of this process (VmHWM) = {ProcessMemory.Mib(ProcessMemory.PeakResidentBytes())}");
    }

    private static int Probe(string path, string tensor)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
        foreach (string arg in (string[])[ProbeCommand, path, tensor]) start.ArgumentList.Add(arg);
        using Process child = Process.Start(start)!;
        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        Console.Write(output);
        return child.ExitCode;
    }

    /// <summary>Child process: RSS before open, after open, after reading one tensor.</summary>
    public static int RunProbe(string[] args)
    {
        string path = args[0], tensor = args[1];
        // Load libtorch first so its own footprint is not counted as growth from the reader.
        TorchRuntime.EnsureLoaded();
        using (torch.zeros(1)) { }
        long before = ProcessMemory.ResidentBytes();
        using SafeTensorsReader reader = SafeTensorsReader.Open(path);
        long opened = ProcessMemory.ResidentBytes();
        using torch.Tensor values = reader.ReadTensor(tensor);
        long afterRead = ProcessMemory.ResidentBytes();
        Console.WriteLine($"probe: RSS before open {ProcessMemory.Mib(before)} (libtorch loaded), after open {ProcessMemory.Mib(opened)} " +
                          $"(+{ProcessMemory.Mib(opened - before)}, {reader.Tensors.Count} tensors indexed)");
        Console.WriteLine($"probe: after reading '{tensor}' ({ProcessMemory.Mib(reader.GetInfo(tensor).ByteLength)}) RSS {ProcessMemory.Mib(afterRead)} " +
                          $"(+{ProcessMemory.Mib(afterRead - before)} since before open; goal < 50 MiB)");
        return 0;
    }

    private static void Throughput(string path)
    {
        long bytes = new FileInfo(path).Length;
        TorchRuntime.EnsureLoaded();

        // Warm: the plain read first pulls the whole file into the page cache, then both read from memory.
        double plainWarmFirst = PlainRead(path, bytes);
        double plainWarm = PlainRead(path, bytes);
        double readerWarm = ReaderLoad(path, bytes);
        Console.WriteLine($"load (warm page cache; plain read ran first, first pass {plainWarmFirst:F0} MiB/s): " +
                          $"reader {readerWarm:F0} MiB/s vs FileStream {plainWarm:F0} MiB/s, ratio {readerWarm / plainWarm:F2}");

        // Cold: evict the file with posix_fadvise(DONTNEED) before each pass.
        bool evictedForPlain = PageCache.TryEvict(path);
        double plainCold = PlainRead(path, bytes);
        bool evictedForReader = PageCache.TryEvict(path);
        double readerCold = ReaderLoad(path, bytes);
        string how = evictedForPlain && evictedForReader ? "cold: posix_fadvise DONTNEED accepted before each pass" : "NOT cold: posix_fadvise failed";
        Console.WriteLine($"load ({how}): reader {readerCold:F0} MiB/s vs FileStream {plainCold:F0} MiB/s, ratio {readerCold / plainCold:F2}");
    }

    private static double PlainRead(string path, long bytes)
    {
        byte[] buffer = new byte[PlainReadBufferBytes];
        var clock = Stopwatch.StartNew();
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1))
            while (stream.Read(buffer) > 0) { }
        return bytes / 1048576.0 / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Every tensor read into a new TorchSharp tensor (then disposed), in file order.</summary>
    private static double ReaderLoad(string path, long bytes)
    {
        var clock = Stopwatch.StartNew();
        using (SafeTensorsReader reader = SafeTensorsReader.Open(path))
        {
            foreach (SafeTensorInfo info in reader.Tensors)
                using (reader.ReadTensor(info.Name)) { }
        }
        return bytes / 1048576.0 / clock.Elapsed.TotalSeconds;
    }
}
