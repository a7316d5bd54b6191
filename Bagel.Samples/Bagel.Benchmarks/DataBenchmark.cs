using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Batching;
using Bagel.Data.Config;
using Bagel.Data.Diagnostics;
using Bagel.Data.Example;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Tokenization;

namespace Bagel.Benchmarks;

/// <summary>
/// The 'data' benchmark: decode + transform + pack throughput of every source kind through
/// <see cref="DataPipelineFactory"/> with 1 and 2 workers, on the default example data and on 1024x1024 JPEGs; raw
/// JPEG decode rates of SkiaSharp and PIL on the same files (<see cref="DecodeComparison"/>); and peak RSS after
/// 1,000 and 10,000 samples of the mixed example data.
/// </summary>
internal static class DataBenchmark
{
    private const string ImageFolderDataset = "pictures";

    // Small example images (<= 64 px) give ~20-60 tokens per sample: a small budget keeps batches at tens of samples.
    private static readonly PackingOptions SmallPacking = new() { ExpectedNumTokens = 2048, MaxNumTokens = 2560, MaxNumTokensPerSample = 2560, PreferBufferBefore = 1024 };

    // The reference's token budgets with max_latent_size 64 for 1024 px VAE images; no per-sample skip, so every edit
    // chain counts; a buffer of 4 instead of 50, because with 10-19k-token edit samples the reference's buffer makes a
    // worker build ~50 samples (2.5 GB of image tensors) before its first batch, which measures the buffer, not decoding.
    private static readonly PackingOptions LargePacking = new() { MaxLatentSize = 64, MaxNumTokensPerSample = 36864, MaxBufferSize = 4 };

    /// <summary>The hidden subcommand that measures memory in a fresh process.</summary>
    public const string MemoryCommand = "data-memory";

    public static int Run(string[] args)
    {
        if (DataBenchmarkOptions.Parse(args) is not { } options) return 2;
        string? tokenizerDir = options.FindTokenizer();
        if (tokenizerDir is null || !Directory.Exists(tokenizerDir))
        {
            Console.Error.WriteLine("data: the Qwen2 tokenizer folder was not found; pass --tokenizer DIR (vocab.json + merges.txt) or set BAGEL_SHARED_DATA.");
            return 2;
        }
        BagelTokenizerSetup tokenizer = BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(tokenizerDir));
        bool ownFolder = options.Folder is null;
        string folder = options.Folder ?? Directory.CreateTempSubdirectory("bagel-data-bench-").FullName;
        var total = Stopwatch.StartNew();
        try
        {
            Console.WriteLine($"data benchmark: {Environment.ProcessorCount} logical CPU(s), .NET {Environment.Version}, datasets under {folder}");
#if DEBUG
            Console.WriteLine("WARNING: a Debug build (no JIT optimisation): managed decode and resize run several times slower; run 'dotnet run -c Release' for figures.");
#endif
            ExampleDataSummary small = Write(new ExampleDataOptions { OutputFolder = Path.Combine(folder, "small"), Overwrite = true });
            ExampleDataSummary large = Write(LargeOptions(Path.Combine(folder, "large1024"), options.LargeCount));

            Throughput(small, "warm-up", DatasetGroupKinds.T2IPretrain, 1, SmallPacking, 50, tokenizer, print: false); // JIT and native libraries
            Console.WriteLine();
            Console.WriteLine($"decode + transform + pack (samples and tokens consumed from DataPipeline.ReadAsync, first batch included; packing: " +
                              $"example {Describe(SmallPacking)}, jpeg1024 {Describe(LargePacking)}):");
            Console.WriteLine($"  {"data",-10} {"kind",-18} {"workers",7} {"samples",8} {"seconds",8} {"samples/s",10} {"tokens/s",11} {"skips",6}");
            foreach (var (summary, label, packing, samples) in new[] { (small, "example", SmallPacking, options.Samples), (large, "jpeg1024", LargePacking, options.LargeSamples) })
            {
                foreach (string kind in DatasetGroupKinds.All)
                {
                    foreach (int workers in (int[])[1, 2])
                        Throughput(summary, label, kind, workers, packing, samples, tokenizer);
                }
            }

            Console.WriteLine();
            DecodeComparison.Run(Directory.GetFiles(Path.Combine(large.Folder, ExampleDataLayout.VlmImagesFolder), "*.jpg").Order(StringComparer.Ordinal).ToList(),
                                 usePython: !options.NoPython);

            Console.WriteLine();
            int memory = MemoryInChildProcess(small, tokenizerDir, options.RssSamples);
            if (memory != 0) return memory;
            Console.WriteLine();
            Console.WriteLine($"total {total.Elapsed.TotalSeconds:F1} s");
            return 0;
        }
        finally
        {
            if (!options.Keep)
            {
                if (ownFolder) Directory.Delete(folder, recursive: true);
                else foreach (string sub in (string[])["small", "large1024"]) if (Directory.Exists(Path.Combine(folder, sub))) Directory.Delete(Path.Combine(folder, sub), recursive: true);
            }
        }
    }

    /// <summary>1024x1024 noisy JPEGs everywhere, the reference's transform sizes, <paramref name="count"/> rows per kind.</summary>
    private static ExampleDataOptions LargeOptions(string folder, int count) => ExampleDataOptions.Large(folder) with
    {
        Overwrite = true,
        T2IFiles = 2,
        T2IRowsPerFile = Math.Max(1, count / 2),
        T2IRowsPerRowGroup = 10,
        EditFiles = 2,
        EditRowsPerFile = Math.Max(1, count / 2),
        EditRowsPerRowGroup = 5,
        VlmLines = count,
    };

    private static ExampleDataSummary Write(ExampleDataOptions options)
    {
        var clock = Stopwatch.StartNew();
        ExampleDataSummary summary = new ExampleDataWriter(options).WriteAsync().GetAwaiter().GetResult();
        Console.WriteLine($"wrote {summary.Folder}: {summary.T2IRows} T2I rows, {summary.EditRows} edit rows ({summary.EditImages} pictures), " +
                          $"{summary.VlmLines} VLM lines, {ProcessMemory.Mib(summary.Bytes)} in {clock.Elapsed.TotalSeconds:F1} s");
        return summary;
    }

    /// <summary>The registry and a one-group mix for <paramref name="kind"/>; the image-folder kind reads the VLM pictures with a captions JSONL.</summary>
    private static (DatasetInfoRegistry Registry, DatasetMixConfig Mix) SingleKind(ExampleDataSummary summary, string kind)
    {
        var registry = DatasetInfoRegistry.Load(summary.DatasetInfoPath);
        var mix = DatasetMixConfig.Load(summary.MixConfigPath, registry);
        if (kind != DatasetGroupKinds.T2IImageFolder)
            return (registry, new DatasetMixConfig([mix.Groups.Single(g => g.Name == kind) with { IsMandatory = false, Weight = 1 }], mix.SourceFile));

        string images = Path.Combine(summary.Folder, ExampleDataLayout.VlmImagesFolder);
        string captions = Path.Combine(summary.Folder, "image_folder_captions.jsonl");
        if (!File.Exists(captions))
            File.WriteAllLines(captions, Directory.GetFiles(images).Order(StringComparer.Ordinal)
                .Select(f => $"{{\"file_name\": \"{Path.GetFileName(f)}\", \"caption\": \"a generated picture named {Path.GetFileNameWithoutExtension(f)}\"}}"));
        registry.Add(kind, ImageFolderDataset, new DatasetInfoEntry { DataDir = images, CaptionsPath = captions });
        var t2i = mix.Groups.Single(g => g.Name == DatasetGroupKinds.T2IPretrain);
        var group = new DatasetGroupConfig { Name = kind, DatasetNames = [ImageFolderDataset], NumUsedData = [int.MaxValue], Weight = 1, ImageTransform = t2i.ImageTransform };
        return (registry, new DatasetMixConfig([group]));
    }

    private static string Describe(PackingOptions p) =>
        $"expected {p.ExpectedNumTokens} / max {p.MaxNumTokens} / per-sample {p.MaxNumTokensPerSample} tokens, buffer {p.MaxBufferSize}";

    private static void Throughput(ExampleDataSummary summary, string label, string kind, int workers, PackingOptions packing, int samples,
        BagelTokenizerSetup tokenizer, bool print = true)
    {
        var (registry, mix) = SingleKind(summary, kind);
        var skips = new DataSkipCounters();
        var factory = new DataPipelineFactory(tokenizer, new DataPipelineOptions { NumWorkers = workers, PrefetchFactor = 2, Packing = packing });
        DataPipeline pipeline = factory.CreateAsync(registry, mix, skips).GetAwaiter().GetResult();
        var (read, tokens, seconds) = Read(pipeline, samples, null);
        if (!print) return;
        string reasons = string.Join(", ", skips.Snapshot().Select(s => $"{s.Key.Reason} {s.Value}"));
        Console.WriteLine($"  {label,-10} {kind,-18} {workers,7} {read,8} {seconds,8:F2} {read / seconds,10:F1} {tokens / seconds,11:F0} {skips.Total,6} {reasons}");
    }

    /// <summary>Reads until <paramref name="samples"/> samples arrived; <paramref name="onProgress"/> sees the running count.</summary>
    private static (long Samples, long Tokens, double Seconds) Read(DataPipeline pipeline, int samples, Action<long>? onProgress)
    {
        long read = 0, tokens = 0;
        var clock = Stopwatch.StartNew();
        var stream = pipeline.ReadAsync().GetAsyncEnumerator();
        try
        {
            while (read < samples && stream.MoveNextAsync().AsTask().GetAwaiter().GetResult())
            {
                using PackedBatch batch = stream.Current;
                read += batch.DataIndexes.Count;
                tokens += batch.SequenceLength;
                onProgress?.Invoke(read);
            }
        }
        finally
        {
            stream.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        return (read, tokens, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Runs <see cref="RunMemory"/> in a child process, so the figures are not the high-water mark of the runs above.</summary>
    private static int MemoryInChildProcess(ExampleDataSummary summary, string tokenizerDir, int samples)
    {
        int exit = 0;
        // Twice: with glibc's default arenas, then with MALLOC_ARENA_MAX=2. Data workers allocate natively (libtorch,
        // Skia) on thread-pool threads, and glibc gives new threads new arenas (up to 8 per core), so the resident set
        // creeps up over the first thousands of samples and then levels off; the second run shows that creep is the
        // allocator's arenas, not a leak. (glibc reads the limit once, before .NET starts its threads, so it can only be
        // set in the environment of the process, not from code.)
        foreach (string? arenaLimit in new[] { null, "2" })
        {
            var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
            if (arenaLimit is not null) start.Environment["MALLOC_ARENA_MAX"] = arenaLimit;
            foreach (string arg in (string[])[MemoryCommand, summary.DatasetInfoPath, summary.MixConfigPath, tokenizerDir, samples.ToString(CultureInfo.InvariantCulture)])
                start.ArgumentList.Add(arg);
            using Process child = Process.Start(start)!;
            string output = child.StandardOutput.ReadToEnd();
            child.WaitForExit();
            Console.Write(output);
            exit = Math.Max(exit, child.ExitCode);
        }
        return exit;
    }

    /// <summary>Child process: the mixed example data (all three groups, 2 workers), peak and current RSS after 1,000 and after N samples.</summary>
    public static int RunMemory(string[] args)
    {
        string datasetInfo = args[0], mixConfig = args[1], tokenizerDir = args[2];
        int samples = int.Parse(args[3], CultureInfo.InvariantCulture);
        string? arenas = Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX");
        Console.WriteLine(arenas is null
            ? "  glibc malloc arenas: default (one per allocating thread, up to 8 per core)"
            : $"  glibc malloc arenas: MALLOC_ARENA_MAX={arenas}");
        BagelTokenizerSetup tokenizer = BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(tokenizerDir));
        var factory = new DataPipelineFactory(tokenizer, new DataPipelineOptions { NumWorkers = 2, Packing = SmallPacking });
        DataPipeline pipeline = factory.CreateFromFilesAsync(datasetInfo, mixConfig).GetAwaiter().GetResult();
        const int firstMark = 1000;
        (long Hwm, long Rss)? atFirst = null;
        long nextMark = firstMark;
        var (read, _, seconds) = Read(pipeline, samples, n =>
        {
            if (n < nextMark) return;
            if (atFirst is null) atFirst = (ProcessMemory.PeakResidentBytes(), ProcessMemory.ResidentBytes());
            // The trend between the two reported points tells warm-up (levels off) from a leak (keeps climbing).
            Console.WriteLine($"  {n,8} samples: peak RSS {ProcessMemory.Mib(ProcessMemory.PeakResidentBytes())}, current RSS {ProcessMemory.Mib(ProcessMemory.ResidentBytes())}, " +
                              $"managed heap {ProcessMemory.Mib(GC.GetTotalMemory(false))}");
            nextMark *= 2;
        });
        long hwm = ProcessMemory.PeakResidentBytes(), rss = ProcessMemory.ResidentBytes();
        Console.WriteLine($"memory (mixed example data, 2 workers, {read} samples in {seconds:F1} s):");
        if (atFirst is { } first)
        {
            Console.WriteLine($"  after {firstMark,6} samples: peak RSS (VmHWM) {ProcessMemory.Mib(first.Hwm)}, current RSS {ProcessMemory.Mib(first.Rss)}");
            Console.WriteLine($"  after {read,6} samples: peak RSS (VmHWM) {ProcessMemory.Mib(hwm)}, current RSS {ProcessMemory.Mib(rss)}");
            double growth = 100.0 * (hwm - first.Hwm) / first.Hwm;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  peak RSS growth {growth:F1}% (goal: under 5%) -> {(growth < 5 ? "ok" : "ABOVE GOAL")}"));
        }
        else
        {
            Console.WriteLine($"  fewer than {firstMark} samples read; peak RSS (VmHWM) {ProcessMemory.Mib(hwm)}, current RSS {ProcessMemory.Mib(rss)}");
        }
        return 0;
    }
}
