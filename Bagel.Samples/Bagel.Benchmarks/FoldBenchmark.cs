using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Native;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Bagel.Training.Schedules;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Benchmarks;

/// <summary>
/// The optimizer step alone (the <c>train</c> benchmark's <c>fold</c> part): a float32 model of N elements in 12
/// tensors under <see cref="FlatBufferAdamW"/> and the fused EMA, stepped by <see cref="OptimizerStepper"/> with clipping
/// active, alternating the folded pass (<see cref="FlatBufferAdamW.FoldStepperWork"/>) and the separate passes round
/// by round, each round followed by a plain <c>copy_</c> of a 256 MiB float32 buffer: the bandwidth that bounds a
/// memory-bound pass, measured under the same load. Prints every round and the best of each.
/// </summary>
internal static class FoldBenchmark
{
    /// <summary>The hidden subcommand that runs it.</summary>
    public const string Command = "train-fold-probe";

    private const int Tensors = 12;
    private const int Rounds = 8;
    private const long CopyElements = 1L << 26;

    public static int Run(string[] args)
    {
        TorchRuntime.EnsureLoaded();
        long elements = long.Parse(args[0], CultureInfo.InvariantCulture);
        using var scope = torch.NewDisposeScope();
        var generator = new torch.Generator(1);
        Parameter[] parameters = [.. Enumerable.Range(0, Tensors).Select(_ => new Parameter(torch.randn(elements / Tensors, generator: generator)))];
        using var optimizer = (FlatBufferAdamW)AdamWFactory.Create([new ParameterGroup("all", parameters)], new AdamWOptions { LearningRate = 1e-4 });
        optimizer.AttachGradients();
        using var ema = new EmaTensors(parameters.Select((p, i) => ($"p{i}", p)), EmaModel.DefaultDecay);
        var scheduler = new LearningRateScheduler(optimizer, new ConstantWithWarmupSchedule(0));
        var stepper = new OptimizerStepper(optimizer, scheduler, ema, new NonFiniteStepGuard(), maxGradNorm: 1.0);
        torch.Tensor source = torch.rand(CopyElements), destination = torch.empty(CopyElements);
        long total = parameters.Sum(p => p.numel());
        Console.WriteLine($"fold: {total / 1e6:F1} M float32 parameters in {Tensors} tensors, {torch.get_num_threads()} threads, {Rounds} rounds of (folded step, separate step, copy_); load {File.ReadAllText("/proc/loadavg").Trim()}");
        double bestFolded = double.MaxValue, bestSeparate = double.MaxValue, bestCopy = double.MaxValue;
        for (int round = 0; round < Rounds; round++)
        {
            foreach (bool fold in (ReadOnlySpan<bool>)[true, false])
            {
                foreach (torch.Tensor buffer in optimizer.GradientBuffers()!) buffer.normal_(0, 1e-3, generator); // norm ~ 3.5 at 12 M: clipped
                optimizer.FoldStepperWork = fold;
                long start = Stopwatch.GetTimestamp();
                OptimizerStepResult r = stepper.Step(round, 1.0);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (fold) bestFolded = Math.Min(bestFolded, seconds);
                else bestSeparate = Math.Min(bestSeparate, seconds);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  round {round} {(fold ? "folded  " : "separate")}: {seconds:F3} s = {seconds / total * 1e9:F2} ns/parameter (clip {r.ClipSeconds:F3}, AdamW {r.AdamWSeconds:F3}, EMA {r.EmaSeconds:F3}, zero_grad {r.ZeroGradSeconds:F3}; {r.FoldedBuckets} buckets folded, norm {r.GradNorm:F2})"));
            }
            long copyStart = Stopwatch.GetTimestamp();
            destination.copy_(source);
            double copy = Stopwatch.GetElapsedTime(copyStart).TotalSeconds;
            bestCopy = Math.Min(bestCopy, copy);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  round {round} copy_ of {4 * CopyElements >> 20} MiB: {copy:F3} s = {8.0 * CopyElements / copy / 1e9:F1} GB/s read + write"));
        }
        double bandwidth = 8.0 * CopyElements / bestCopy, floor = 40.0 * total / bandwidth;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fold: best folded step {bestFolded:F3} s ({40.0 * total / bestFolded / 1e9:F1} GB/s at 40 B/parameter), best separate step {bestSeparate:F3} s ({bestSeparate / bestFolded:F2}x the folded), best copy_ {bandwidth / 1e9:F1} GB/s: floor {floor:F3} s, folded = {bestFolded / floor:F2}x the floor; load {File.ReadAllText("/proc/loadavg").Trim()}"));
        foreach (Parameter p in parameters) p.Dispose();
        return 0;
    }
}
