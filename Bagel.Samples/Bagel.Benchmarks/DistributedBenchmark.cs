using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Distributed;
using Bagel.Core.Native;
using Bagel.Training.Recipes;
using TorchSharp;

namespace Bagel.Benchmarks;

/// <summary>
/// Data-parallel figures (issue 13): (a) Open MPI all-reduce of float32 buffers of 1, 25 and 100 MB between 2 ranks on
/// this machine (loopback / shared memory), next to a plain memory copy of the same size; (b) the step time of the tiny
/// preset on 2 data-parallel ranks against 1 process (each rank trains its own batch, so 2 ranks do twice the work per
/// step; the overhead is the extra step time). Both run in child processes started through mpirun.
/// </summary>
internal static class DistributedBenchmark
{
    /// <summary>The hidden subcommand each rank of the all-reduce part runs.</summary>
    public const string AllReduceCommand = "distributed-allreduce-probe";

    /// <summary>The hidden subcommand each rank of the step-time part runs.</summary>
    public const string StepCommand = "distributed-step-probe";

    public static int Run(string[] args)
    {
        string? mpirun = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(f => Path.Combine(f, "mpirun")).FirstOrDefault(File.Exists);
        if (mpirun is null)
        {
            Console.Error.WriteLine("distributed: mpirun is not on PATH; install Open MPI (apt-get install openmpi-bin libopenmpi-dev).");
            return 2;
        }
        string steps = Option(args, "--steps", "30"), repeats = Option(args, "--repeats", "5");
        Console.WriteLine($"load (uptime): {File.ReadAllText("/proc/loadavg").Trim()}; cores: {Environment.ProcessorCount}");
        int failed = 0;
        failed |= Mpirun(mpirun, 2, AllReduceCommand, repeats);
        string folder = Directory.CreateTempSubdirectory("bagel-dp-bench-").FullName;
        try
        {
            failed |= Child(Environment.ProcessPath!, [StepCommand, Path.Combine(folder, "one"), steps]);
            failed |= Mpirun(mpirun, 2, StepCommand, Path.Combine(folder, "two"), steps);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        Console.WriteLine($"load (uptime): {File.ReadAllText("/proc/loadavg").Trim()}");
        return failed;
    }

    /// <summary>(a) On each rank: all-reduce and memory-copy timings; rank 0 prints them.</summary>
    public static int RunAllReduce(string[] args)
    {
        TorchRuntime.EnsureLoaded();
        torch.set_num_threads(1);
        int repeats = int.Parse(args[0], CultureInfo.InvariantCulture);
        using var group = new MpiProcessGroup(TimeSpan.FromMinutes(5));
        if (group.Rank == 0)
            Console.WriteLine($"all-reduce (sum, float32) over {group.WorldSize} MPI ranks on one machine vs a memory copy of the same buffer; median of {repeats}:");
        foreach (int megabytes in (int[])[1, 25, 100])
        {
            long elements = megabytes * 1024L * 1024 / 4;
            using torch.Tensor buffer = torch.ones(elements), source = torch.ones(elements), target = torch.empty(elements);
            group.AllReduce(buffer); // warm-up (connections, pages)
            target.copy_(source);
            var reduce = new List<double>();
            var copy = new List<double>();
            for (int i = 0; i < repeats; i++)
            {
                group.Barrier();
                var clock = Stopwatch.StartNew();
                group.AllReduce(buffer);
                reduce.Add(clock.Elapsed.TotalSeconds);
                clock.Restart();
                target.copy_(source);
                copy.Add(clock.Elapsed.TotalSeconds);
            }
            double r = Median(reduce), c = Median(copy), bytes = elements * 4.0;
            if (group.Rank == 0)
                Console.WriteLine($"  {megabytes,4} MB: all-reduce {r * 1e3,9:0.00} ms ({bytes / r / 1e9,6:0.00} GB/s algorithm bandwidth); " +
                                  $"copy {c * 1e3,8:0.00} ms ({bytes / c / 1e9,6:0.00} GB/s); all-reduce / copy time = {r / c,6:0.0}x");
        }
        return 0;
    }

    /// <summary>(b) The tiny preset for args[1] steps in folder args[0], on the ranks this process belongs to; rank 0 prints the mean step time after 5 warm-up steps.</summary>
    public static int RunStep(string[] args)
    {
        TorchRuntime.EnsureLoaded();
        torch.set_num_threads(1);
        string folder = args[0];
        int steps = int.Parse(args[1], CultureInfo.InvariantCulture);
        var times = new List<double>();
        var clock = Stopwatch.StartNew();
        int exit = TinyPreset.RunAsync(new TinyPresetOptions
        {
            ResultsDir = folder, TotalSteps = steps, SaveEvery = 1000,
            OnStep = _ =>
            {
                times.Add(clock.Elapsed.TotalSeconds);
                clock.Restart();
            },
        }, TextWriter.Null, TextWriter.Null).GetAwaiter().GetResult();
        if (exit != 0) return exit;
        if (LaunchEnvironment.FromEnvironment() is { Rank: 0 } launch) // the group is gone by now; the launcher's variables still say which rank this is
        {
            double[] measured = [.. times.Skip(5)];
            Console.WriteLine($"tiny preset, {launch.WorldSize} process{(launch.WorldSize == 1 ? "" : "es (data-parallel, MPI)")}: mean step {measured.Average() * 1e3:0.0} ms " +
                              $"(median {Median([.. measured]) * 1e3:0.0} ms) over steps 5..{steps - 1}");
        }
        return 0;
    }

    private static int Mpirun(string mpirun, int ranks, params string[] args) =>
        Child(mpirun, ["-n", ranks.ToString(CultureInfo.InvariantCulture), "--oversubscribe", "--allow-run-as-root", Environment.ProcessPath!, .. args]);

    private static int Child(string fileName, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(fileName) { UseShellExecute = false };
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using Process child = Process.Start(start)!;
        child.WaitForExit();
        if (child.ExitCode != 0) Console.Error.WriteLine($"distributed: '{fileName} {string.Join(' ', args)}' exited with {child.ExitCode}.");
        return child.ExitCode == 0 ? 0 : 1;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    private static string Option(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
