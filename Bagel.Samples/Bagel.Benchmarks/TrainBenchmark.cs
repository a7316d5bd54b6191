using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Native;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Training.Ema;
using Bagel.Training.Loop;
using Bagel.Training.Optimization;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp.Modules;
using Bagel.Training.Metrics;
using TorchSharp;

namespace Bagel.Benchmarks;

/// <summary>
/// The training loop's figures (issue 6): (a) memory: the tiny composite trained for many steps on the example data,
/// peak RSS after step 100 and at the end and the growth between them; (b) throughput: the composite at the models
/// issue's small config (hidden 896), the step time split into data wait, forward+backward and the optimizer step
/// (clip, AdamW, EMA, zero_grad), tokens/s and MFU, for TorchSharp's per-tensor AdamW and for the flat optimizer with
/// its fused pass and with libtorch's operations (alternated in one process); (c) the per-parameter AdamW/EMA against flat buffers
/// (<see cref="OptimizerComparison"/>). Each part runs in a fresh child process so earlier allocations do not mix in.
/// </summary>
internal static class TrainBenchmark
{
    /// <summary>The hidden subcommand that runs the memory part.</summary>
    public const string MemoryCommand = "train-memory-probe";

    /// <summary>The hidden subcommand that runs the throughput part.</summary>
    public const string ThroughputCommand = "train-throughput-probe";

    /// <summary>The hidden subcommand that measures the memory of building the optimizer and the EMA.</summary>
    public const string BuildCommand = "train-build-probe";

    /// <summary>Transient RSS while building the flat optimizer or the fused EMA that the issue accepts, as a share of the model's bytes.</summary>
    private const double AcceptedBuildSpikePercent = 10.0;

    /// <summary>Optimizer-step share of the step time the issue accepts for the fused default at hidden 896.</summary>
    private const double AcceptedFusedSharePercent = 15.0;

    /// <summary>The hidden subcommand that runs the optimizer comparison.</summary>
    public const string OptimizerCommand = "train-optimizer-probe";

    /// <summary>Peak-RSS growth the issue accepts between step 100 and the end.</summary>
    private const double AcceptedGrowthPercent = 5.0;

    /// <summary>Optimizer-step share of the step time above which optimizing it is worth the code (the brief's threshold).</summary>
    private const double MeaningfulSharePercent = 10.0;

    public static int Run(string[] args)
    {
        string? tokenizer = Option(args, "--tokenizer", null) ?? Environment.GetEnvironmentVariable("BAGEL_TOKENIZER") ?? FindSharedTokenizer();
        if (tokenizer is null)
        {
            Console.Error.WriteLine("train: no Qwen2 tokenizer found; pass --tokenizer DIR or set BAGEL_TOKENIZER (the Qwen2.5 files).");
            return 2;
        }
        string steps = Option(args, "--steps", "2000")!, at = Option(args, "--rss-at", "100")!;
        string measured = Option(args, "--measure-steps", "3")!, tokens = Option(args, "--tokens", "1024")!, layers = Option(args, "--layers", "4")!;
        string parts = Option(args, "--parts", "memory,build,throughput,optimizer")!;
        string device = Option(args, "--device", "cpu")!, peakDtype = Option(args, "--peak-dtype", device == "cpu" ? "float32" : "bfloat16")!;
        Console.WriteLine($"load (uptime): {File.ReadAllText("/proc/loadavg").Trim()}; MALLOC_ARENA_MAX={Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") ?? "unset"}");
        int failed = 0;
        string memoryOptimizer = args.Contains("--per-tensor") ? "per-tensor" : "flat";
        if (parts.Contains("memory", StringComparison.Ordinal)) failed |= Child(MemoryCommand, tokenizer, steps, at, memoryOptimizer);
        if (parts.Contains("build", StringComparison.Ordinal))
        {
            failed |= Child(BuildCommand, tokenizer, layers, "per-tensor");
            failed |= Child(BuildCommand, tokenizer, layers, "flat");
        }
        if (parts.Contains("throughput", StringComparison.Ordinal))
        {
            failed |= Child(ThroughputCommand, tokenizer, measured, tokens, layers, "per-tensor", device, peakDtype);
            failed |= Child(ThroughputCommand, tokenizer, measured, tokens, layers, "flat", device, peakDtype);
        }
        if (parts.Contains("optimizer", StringComparison.Ordinal)) failed |= Child(OptimizerCommand, tokenizer, layers);
        // Not in the default parts: the optimizer step alone, folded against separate, and the copy_ bandwidth.
        if (parts.Contains("fold", StringComparison.Ordinal)) failed |= Child(FoldBenchmark.Command, Option(args, "--fold-elements", "48000000")!);
        Console.WriteLine($"load (uptime): {File.ReadAllText("/proc/loadavg").Trim()}");
        return failed;
    }

    /// <summary>(a) Trains the tiny composite for args[1] steps (args[3]: "flat" for FlatBufferAdamW, the default; "per-tensor"), printing RSS, peak RSS and the managed heap along the way.</summary>
    public static int RunMemory(string[] args) => RunMemoryAsync(args[0], Int(args[1]), Int(args[2]), args[3] == "flat").GetAwaiter().GetResult();

    private static async Task<int> RunMemoryAsync(string tokenizer, int steps, int at, bool flat)
    {
        TorchRuntime.EnsureLoaded();
        using TrainSetup setup = await TrainSetup.CreateAsync(tokenizer, small: false, expectedTokens: 384, layers: 0);
        int every = Math.Max(1, steps / 8);
        double peakAt = 0, rssAt = 0, lastPeak = 0, lastRss = 0;
        var watch = Stopwatch.StartNew();
        Console.WriteLine($"memory: tiny composite ({Parameters(setup)}), {steps} steps on the example data, 1 data worker, EMA on, optimizer {(flat ? "FlatBufferAdamW" : "TorchSharp's AdamW")}");
        using (Trainer trainer = setup.BuildTrainer(steps, report =>
        {
            long done = report.Step + 1;
            if (done != at && done % every != 0 && done != steps) return;
            double rss = Mib(ProcessMemory.ResidentBytes()), peak = ProcessMemory.PeakMiB();
            if (done == at) (rssAt, peakAt) = (rss, peak);
            if (done == steps) (lastRss, lastPeak) = (rss, peak);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  step {done,5}: RSS {rss,7:F1} MiB, peak RSS {peak,7:F1} MiB, managed heap {Mib(GC.GetTotalMemory(false)),6:F1} MiB, {watch.Elapsed.TotalSeconds,6:F0} s"));
        }, flat))
        {
            await trainer.RunAsync();
        }
        double endPeak = ProcessMemory.PeakMiB(); // after the final checkpoint as well
        double growth = 100 * (lastPeak - peakAt) / peakAt;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"memory: peak RSS {peakAt:F1} MiB after step {at}, {lastPeak:F1} MiB after step {steps}: growth {growth:F2}% ({(growth < AcceptedGrowthPercent ? "meets" : "FAILS")} < {AcceptedGrowthPercent}%); {endPeak:F1} MiB after the final checkpoint; RSS {rssAt:F1} -> {lastRss:F1} MiB; {steps / watch.Elapsed.TotalSeconds:F1} steps/s"));
        return 0;
    }

    /// <summary>
    /// (a2) Builds the hidden-896 composite (args[1] layers), then AdamW and the EMA as the trainer does (args[2]:
    /// "flat" for the fused defaults, "per-tensor" for TorchSharp's AdamW and the per-tensor EMA), and prints the RSS
    /// before and after each and its peak while building (VmHWM, reset before each): the transient is peak − after.
    /// </summary>
    public static int RunBuild(string[] args)
    {
        TorchRuntime.EnsureLoaded();
        int layers = Int(args[1]);
        bool flat = args[2] == "flat";
        int vocabulary = BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(args[0], NullLogger.Instance)).Tokenizer.Count;
        BagelConfig config = TrainSetup.SmallConfig(vocabulary, layers);
        torch.manual_seed(0);
        using var model = new BagelModel(config);
        long trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel() * p.ElementSize);
        long all = model.parameters().Sum(p => p.numel() * p.ElementSize);
        double modelMiB = Mib(trainable);
        string name = flat ? "FlatBufferAdamW + fused EMA" : "TorchSharp's AdamW + per-tensor EMA";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"build ({(flat ? "flat" : "per-tensor")}): composite at hidden 896, {layers} MoT layers: {trainable / 4e6:F0} M trainable float32 parameters = {modelMiB:F0} MiB ({Mib(all):F0} MiB with frozen ones); {name}"));
        var adamW = new AdamWOptions { FlatBuffers = flat };
        (double before, double after, double peak) optimizerRss;
        AdamW? optimizer = null;
        EmaModel? ema = null;
        try
        {
            optimizerRss = Measure(() => optimizer = AdamWFactory.Create(model, adamW));
            var emaRss = Measure(() => ema = EmaModel.Create(model, () => new BagelModel(config), fused: flat));
            foreach ((string part, (double b, double a, double p), double expected) in new[]
            {
                ("AdamW", optimizerRss, 2.0), ("EMA", emaRss, all / (double)trainable),
            })
            {
                double transient = p - a;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {part}: RSS {b:F0} -> {a:F0} MiB (+{a - b:F0} MiB = {(a - b) / modelMiB:F2}x the model, {expected:F2}x expected), peak while building {p:F0} MiB: transient (peak - after) {transient:F0} MiB = {100 * transient / modelMiB:F1}% of the model's bytes ({(transient < AcceptedBuildSpikePercent / 100 * modelMiB ? "meets" : "FAILS")} < {AcceptedBuildSpikePercent}%)"));
            }
        }
        finally
        {
            ema?.Dispose();
            optimizer?.Dispose();
        }
        return 0;
    }

    /// <summary>RSS before and after <paramref name="build"/>, and the peak in between (MiB).</summary>
    private static (double Before, double After, double Peak) Measure(Action build)
    {
        GC.Collect();
        double before = Mib(ProcessMemory.ResidentBytes());
        ProcessMemory.ResetPeak();
        build();
        double peak = ProcessMemory.PeakMiB();
        return (before, Mib(ProcessMemory.ResidentBytes()), peak);
    }

    /// <summary>
    /// (b) Trains the small-config composite for a warm-up step plus args[1] measured steps and prints the step split.
    /// With args[4] "flat" it runs twice as many measured steps with <see cref="FlatBufferAdamW"/>, alternating its fused
    /// pass and libtorch's operations step by step (the results are the same bits either way), so both splits come from
    /// one process under the same load; "per-tensor" runs TorchSharp's AdamW and the per-tensor EMA.
    /// </summary>
    public static int RunThroughput(string[] args) =>
        RunThroughputAsync(args[0], Int(args[1]), Int(args[2]), Int(args[3]), args[4] == "flat", args[5], args[6]).GetAwaiter().GetResult();

    private static async Task<int> RunThroughputAsync(string tokenizer, int measured, int tokens, int layers, bool flat, string deviceName, string peakDtypeName)
    {
        TorchRuntime.EnsureLoaded();
        var device = new torch.Device(deviceName);
        TorchRuntime.EnsureLoaded(device);
        torch.ScalarType peakDtype = peakDtypeName switch
        {
            "bfloat16" or "bf16" => torch.bfloat16,
            "float16" or "fp16" => torch.float16,
            "float32" or "fp32" => torch.float32,
            _ => throw new ArgumentException($"--peak-dtype '{peakDtypeName}' is not one of bfloat16, float16, float32."),
        };
        double peakFlops = ModelBenchmark.MeasureMatmulFlops(device, peakDtype);
        using TrainSetup setup = await TrainSetup.CreateAsync(tokenizer, small: true, expectedTokens: tokens, layers: layers, device: device);
        int steps = flat ? 2 * measured : measured;
        string optimizerName = flat ? "FlatBufferAdamW, alternating its fused pass (with the clip scale, EMA and zero_grad folded in) and libtorch's operations (separate passes) step by step" : "TorchSharp's AdamW";
        Console.WriteLine($"throughput: composite at hidden 896, {layers} MoT layers, vocabulary {setup.Config.LlmConfig.VocabSize:N0}, small SigLIP + tiny VAE ({Parameters(setup)}), ~{tokens}-token packs, 1 warm-up + {steps} steps, {torch.get_num_threads()} threads, optimizer {optimizerName}");
        var reports = new List<(TrainingStepReport Report, double Squares, bool Fused)>();
        Trainer? running = null;
        long fusedBucketSteps = 0;
        using (Trainer trainer = setup.BuildTrainer(steps + 1, report =>
        {
            var optimizer = running?.Optimizer as FlatBufferAdamW;
            // Whether the fused pass ran this step (never on CUDA or for other dtypes, whatever the switch says).
            bool fused = optimizer is not null && optimizer.FusedKernelBucketSteps > fusedBucketSteps;
            fusedBucketSteps = optimizer?.FusedKernelBucketSteps ?? 0;
            reports.Add((report, setup.TakeSquaredSampleLengths(), fused));
            // Step 0 (the warm-up) and every other step after it take the fused pass.
            if (optimizer is not null) optimizer.FusedKernel = report.Step % 2 == 0;
        }, flat))
        {
            running = trainer;
            await trainer.RunAsync();
            if (flat && trainer.Optimizer is FlatBufferAdamW f)
            {
                Console.WriteLine($"  fused pass: {f.FusedKernelBucketSteps} bucket steps over {f.Buckets.Count} buckets ({string.Join(", ", f.Buckets.Select(b => $"{b.DType} {b.Elements / 1e6:F1} M"))}); {FlatBufferAdamW.FusedKernelUnavailableReason ?? "calibrated against libtorch's operations"}");
            }
        }
        // The load of a shared machine changes: the better of two matmul measurements is the denominator.
        peakFlops = Math.Max(peakFlops, ModelBenchmark.MeasureMatmulFlops(device, peakDtype));
        var timed = reports.Skip(1).ToList();
        if (flat)
        {
            // The default is the fused pass where it runs (float32 on the CPU), libtorch's operations elsewhere.
            bool anyFused = timed.Any(r => r.Fused);
            var fusedSteps = timed.Where(r => r.Fused).Select(r => (r.Report, r.Squares)).ToList();
            PrintSplit("flat, fused pass", fusedSteps, setup.FlopConfig, peakFlops, peakDtypeName, deviceName, verdict: true);
            PrintSplit("flat, libtorch operations", [.. timed.Where(r => !r.Fused).Select(r => (r.Report, r.Squares))], setup.FlopConfig, peakFlops, peakDtypeName, deviceName, verdict: !anyFused);
            if (fusedSteps.Count > 0 && device.type == DeviceType.CPU) PrintBandwidthFloor(setup, fusedSteps);
        }
        else
        {
            PrintSplit("per-tensor", [.. timed.Select(r => (r.Report, r.Squares))], setup.FlopConfig, peakFlops, peakDtypeName, deviceName, verdict: false);
        }
        return 0;
    }

    /// <summary>Prints the step split, tokens/s and MFU of <paramref name="timed"/> steps, and whether the optimizer share meets the issue's bound.</summary>
    private static void PrintSplit(string label, List<(TrainingStepReport Report, double Squares)> timed, Qwen2FlopConfig flops,
        double peakFlops, string peakDtypeName, string deviceName, bool verdict)
    {
        if (timed.Count == 0) return;
        double data = timed.Sum(r => r.Report.DataWaitSeconds), compute = timed.Sum(r => r.Report.ForwardBackwardSeconds);
        double step = timed.Sum(r => r.Report.OptimizerStepSeconds), total = data + compute + step;
        double clip = timed.Sum(r => r.Report.OptimizerStep.ClipSeconds), adamW = timed.Sum(r => r.Report.OptimizerStep.AdamWSeconds);
        double ema = timed.Sum(r => r.Report.OptimizerStep.EmaSeconds), zero = timed.Sum(r => r.Report.OptimizerStep.ZeroGradSeconds);
        // With the fold, the clip part is the gradient norm alone and the fused pass holds the clip scale, the EMA and the
        // zeroing of the float32 buckets; what is left of the EMA and zero_grad ran separately.
        bool folded = timed.All(r => r.Report.OptimizerStep.FoldedBuckets > 0);
        string parts = folded
            ? $"clip norm {100 * clip / total:F1}%, fused pass (clip scale + AdamW + EMA + zero_grad) {100 * adamW / total:F1}% = {adamW / timed.Count:F2} s, EMA left separate {100 * ema / total:F1}% ({timed.Average(r => r.Report.OptimizerStep.FoldedEmaTensors):F0} EMA tensors folded), zero_grad left separate {100 * zero / total:F1}%"
            : $"clip {100 * clip / total:F1}%, AdamW {100 * adamW / total:F1}% = {adamW / timed.Count:F2} s, EMA {100 * ema / total:F1}%, zero_grad {100 * zero / total:F1}%";
        long tokenCount = timed.Sum(r => r.Report.Tokens);
        double flopCount = flops.DenseTokenFactor * tokenCount + flops.AttentionFactor * timed.Sum(r => r.Squares);
        // The reference's N_dense counts embedding and head (2·vocab·hidden) for every token; the lookup executes no
        // matmul and BAGEL applies the head to the CE tokens only.
        long ceTokens = timed.Sum(r => r.Report.CeTokens);
        double executed = flopCount - 6.0 * flops.VocabSize * flops.HiddenSize * (2 * tokenCount - ceTokens);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"throughput ({label}, {timed.Count} steps): {tokenCount / (double)timed.Count:F0} tokens/step, step {total / timed.Count:F2} s = data wait {data / timed.Count:F3} s + forward+backward {compute / timed.Count:F2} s + optimizer step {step / timed.Count:F2} s ({100 * step / total:F1}% of the step: {parts}); {tokenCount / total:F0} tokens/s; MFU {100 * flopCount / total / peakFlops:F1}% by the reference's formula ({flopCount / total / 1e9:F1} GFLOP/s, embedding and head counted for every token), {100 * executed / total / peakFlops:F1}% counting the head for the {ceTokens / timed.Count} CE tokens per step only ({executed / total / 1e9:F1} GFLOP/s), of the better of two {peakDtypeName} matmul measurements on {deviceName} ({peakFlops / 1e9:F1} GFLOP/s); peak RSS {ProcessMemory.PeakMiB():F0} MiB"));
        double share = 100 * step / total;
        string bound = verdict
            ? string.Create(CultureInfo.InvariantCulture, $"; fused default: {(share < AcceptedFusedSharePercent ? "meets" : "FAILS")} < {AcceptedFusedSharePercent}%")
            : "";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  the optimizer step is {(share > MeaningfulSharePercent ? "a meaningful" : "not a meaningful")} share of the step ({share:F1}% against the {MeaningfulSharePercent}% this benchmark calls meaningful){bound}"));
    }

    /// <summary>
    /// The memory-bandwidth floor of the optimizer step: a float32 AdamW step with the EMA must read the parameter,
    /// gradient, both moments and the EMA and write the parameter, moments and EMA back and zero the gradient (40 bytes
    /// per parameter, whatever the kernel); divided by the bandwidth of a plain <c>copy_</c> of a large float32 buffer
    /// measured now, in this process, it is the least time any single pass over dense gradients could take. The fused
    /// pass goes under it where it leaves embedding rows without gradients alone (no weight decay, zero moments).
    /// </summary>
    private static void PrintBandwidthFloor(TrainSetup setup, List<(TrainingStepReport Report, double Squares)> fusedSteps)
    {
        const long BytesPerParameter = 40;
        const long CopyElements = 1L << 26; // 256 MiB each way: far beyond any cache
        long parameters = setup.Model.parameters().Where(p => p.requires_grad && p.dtype == torch.float32).Sum(p => p.numel());
        double best = double.MaxValue;
        using (var scope = torch.NewDisposeScope())
        {
            torch.Tensor source = torch.rand(CopyElements), destination = torch.empty(CopyElements);
            for (int round = 0; round < 6; round++)
            {
                long start = Stopwatch.GetTimestamp();
                destination.copy_(source);
                best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
        }
        double bandwidth = 2.0 * 4 * CopyElements / best; // bytes read + bytes written per second
        double floor = BytesPerParameter * parameters / bandwidth;
        double step = fusedSteps.Average(r => r.Report.DataWaitSeconds + r.Report.ForwardBackwardSeconds + r.Report.OptimizerStepSeconds);
        double optimizer = fusedSteps.Average(r => r.Report.OptimizerStepSeconds);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  bandwidth floor: bytes an f32 AdamW+EMA step moves per parameter with a gradient (read p,g,m,v,ema; write p,m,v,ema; zero g = {BytesPerParameter} B; embedding rows with no gradient and zero moments need only the EMA's part under no weight decay) x {parameters / 1e6:F1} M parameters / measured bandwidth {bandwidth / 1e9:F1} GB/s (best of 6 copy_ of {4 * CopyElements >> 20} MiB, read + write, {torch.get_num_threads()} threads) = {floor:F2} s = {100 * floor / step:F1}% of this step ({step:F2} s); the fused default's optimizer step took {optimizer:F2} s = {optimizer / floor:F1}x the floor ({100 * optimizer / step:F1}% of the step)"));
    }

    /// <summary>(c) The optimizer comparison on the tiny and the small config.</summary>
    public static int RunOptimizer(string[] args) => OptimizerComparison.Run(args[0], Int(args[1]));

    internal static string Parameters(TrainSetup setup)
    {
        long trainable = setup.Model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        int tensors = setup.Model.parameters().Count(p => p.requires_grad);
        return $"{trainable / 1e6:F1} M trainable parameters in {tensors} tensors";
    }

    private static int Child(params string[] arguments)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        foreach (string a in arguments) info.ArgumentList.Add(a);
        using var child = Process.Start(info)!;
        child.WaitForExit();
        if (child.ExitCode != 0) Console.Error.WriteLine($"'{arguments[0]}' failed (exit {child.ExitCode}).");
        return child.ExitCode == 0 ? 0 : 1;
    }

    private static double Mib(long bytes) => bytes / 1048576.0;

    private static int Int(string text) => int.Parse(text, CultureInfo.InvariantCulture);

    private static string? Option(string[] args, string name, string? fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    private static string? FindSharedTokenizer()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "..", "shared", "data", "tokenizer", "qwen2.5");
            if (File.Exists(Path.Combine(candidate, "vocab.json"))) return Path.GetFullPath(candidate);
        }
        return null;
    }
}
