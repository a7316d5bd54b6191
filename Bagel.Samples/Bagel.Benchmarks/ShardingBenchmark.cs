using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Batching;
using Bagel.Core.Distributed;
using Bagel.Core.Native;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Training.Loop;
using Bagel.Training.Loss;
using Bagel.Training.Models;
using Bagel.Training.Options;
using Bagel.Training.Sharding;
using TorchSharp;

namespace Bagel.Benchmarks;

/// <summary>
/// Per-rank memory of the sharding modes (issue 14): the composite at Qwen2.5-0.5B widths (hidden 896, MoT) trained 2
/// steps in fp32 on one synthetic pack per rank, on 1 rank and on 2 Open MPI ranks for each mode (FULL_SHARD included); every rank prints its
/// peak RSS and the bytes of the state it holds (weights, gradients, AdamW moments, master shard, EMA), against the
/// per-parameter formula of docs/sharding.md.
/// </summary>
internal static class ShardingBenchmark
{
    public const string StepCommand = "sharding-step";

    public static int Run(string[] args)
    {
        string layers = Option(args, "--layers", "2"), vocab = Option(args, "--vocab", "32768"), tokens = Option(args, "--tokens", "512");
        string? mpirun = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(f => Path.Combine(f, "mpirun")).FirstOrDefault(File.Exists);
        if (mpirun is null)
        {
            Console.Error.WriteLine("sharding: mpirun is not on PATH; install Open MPI (apt-get install openmpi-bin libopenmpi-dev).");
            return 1;
        }
        Console.WriteLine($"sharding: composite at hidden 896, {layers} MoT layers, vocabulary {vocab}, ~{tokens}-token pack per rank, fp32, 1 torch thread per rank; load {File.ReadAllText("/proc/loadavg").Trim()}");
        bool failed = false;
        // --modes 2:Gradients,2:Parameters picks configurations (ranks:mode); default: all.
        string modes = Option(args, "--modes", "1:None,2:None,2:OptimizerState,2:Gradients,2:Parameters")!;
        foreach ((int ranks, ShardingMode mode) in modes.Split(',').Select(m => m.Split(':')).Select(p => (Int(p[0]), Enum.Parse<ShardingMode>(p[1]))))
        {
            var start = new ProcessStartInfo(mpirun) { UseShellExecute = false };
            foreach (string a in (string[])["-n", ranks.ToString(CultureInfo.InvariantCulture), "--oversubscribe", "--allow-run-as-root", Environment.ProcessPath!, StepCommand, mode.ToString(), layers, vocab, tokens])
                start.ArgumentList.Add(a);
            using Process child = Process.Start(start)!;
            child.WaitForExit();
            failed |= child.ExitCode != 0;
        }
        return failed ? 1 : 0;
    }

    /// <summary>
    /// One configuration: <c>sharding-step MODE LAYERS VOCAB TOKENS [DEVICE]</c>, under mpirun (the ranks of the job), or
    /// alone as one rank (the GPU check's FULL_SHARD step: <c>sharding-step Parameters 24 151665 4096 cuda</c>).
    /// </summary>
    public static int RunStep(string[] args)
    {
        var device = new torch.Device(args.Length > 4 ? args[4] : "cpu");
        TorchRuntime.EnsureLoaded(device);
        torch.set_num_threads(1);
        var mode = Enum.Parse<ShardingMode>(args[0]);
        int layers = Int(args[1]), vocab = Int(args[2]), tokens = Int(args[3]);
        // Under mpirun (Open MPI's variables) the ranks of the job; started alone, one rank.
        using IProcessGroup group = Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is null ? SingleProcessGroup.Instance : new MpiProcessGroup(TimeSpan.FromMinutes(10));
        string folder = Path.Combine(Path.GetTempPath(), $"bagel-sharding-bench-{Environment.ProcessId}");
        try
        {
            BagelConfig config = TrainSetup.SmallConfig(vocab, layers);
            torch.manual_seed(0);
            using var model = new BagelModel(config);
            using var vae = new FluxAutoEncoder(config.VaeConfig!);
            model.to(device);
            vae.to(device);
            Bagel.Training.Metrics.DeviceMemoryMonitor? gpu = Bagel.Training.Metrics.DeviceMemoryMonitor.Create(device, null);
            var trainable = new BagelTrainingModel(model, vae, () => new BagelModel(config));
            TrainingConfiguration options = TrainingConfiguration.Defaults();
            options.Training.CheckpointDir = Path.Combine(folder, "checkpoints");
            options.Training.ResultsDir = folder;
            options.Training.Lr = 1e-4;
            options.Training.WarmupSteps = 0;
            using PackedBatch hostBatch = LoraBenchmark.SyntheticBatch(vocab, tokens, config);
            using PackedBatch? deviceBatch = device.type == DeviceType.CPU ? null : hostBatch.ToDeviceForTraining(device);
            PackedBatch batch = deviceBatch ?? hostBatch;
            long afterModel = ProcessMemory.ResidentBytes();
            using var session = new TrainingSession(trainable, options, new TrainingSessionOptions { ProcessGroup = group, Sharding = mode });
            session.Restore();
            model.train();
            double before = ProcessMemory.ResetPeak();
            var watch = Stopwatch.StartNew();
            for (int step = 0; step < 2; step++)
            {
                using var scope = torch.NewDisposeScope();
                ModelLossOutputs outputs = trainable.Forward(batch);
                StepLoss loss = TrainingLoss.Combine(outputs.CePerToken, outputs.CeTokenWeights, outputs.MseSquaredError, session.LossWeights);
                loss.Total.backward();
                session.Gradients.SynchronizeGradients();
                session.Stepper.Step(step, loss.Total.item<float>());
            }
            double seconds = watch.Elapsed.TotalSeconds / 2, peak = ProcessMemory.PeakMiB();
            // Under Parameters the decoder layers are released between steps: count the trained tensors from the layout.
            long n = session.ShardedOptimizer?.Layout.TotalElements ?? model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
            long largest = (session.ShardedOptimizer?.Layout.Entries.Max(e => e.Elements) ?? model.parameters().Where(p => p.requires_grad).Max(p => p.numel())) * 4;
            long weights = Bytes(model.parameters()), adamW = 2 * session.Optimizer.parameters().Sum(p => p.numel()) * 4;
            long master = 0, gradients, ema;
            if (session.ShardedOptimizer is { } sharded)
            {
                master = sharded.Master.numel() * 4;
                ema = sharded.Ema.Shard.numel() * 4;
                // The gradient shard, plus the whole flat gradient buffer OptimizerState keeps (SHARD_GRAD_OP frees it after the reduce-scatter).
                gradients = master + (mode == ShardingMode.OptimizerState ? sharded.Layout.PaddedElements * 4 : 0);
            }
            else
            {
                ema = Bytes(session.Ema.Module.parameters()); // a whole module copy
                gradients = n * 4;
            }
            long state = weights + gradients + adamW + master + ema;
            string save = "";
            if (session.ShardedCheckpoint is { } checkpoint)
            {
                // A checkpoint: model.safetensors and ema.safetensors streamed to rank 0 one gathered tensor at a time.
                double beforeSave = ProcessMemory.ResetPeak();
                var saveClock = Stopwatch.StartNew();
                session.Save(new Bagel.Training.Checkpoints.TrainProgress(2), null);
                save = string.Create(CultureInfo.InvariantCulture,
                    $"; checkpoint {saveClock.Elapsed.TotalSeconds:F1} s, gathered tensors held at once at most {Mib(checkpoint.PeakGatheredBytes):F0} MiB (largest tensor {Mib(largest):F0} MiB), RSS {beforeSave:F0} -> peak {ProcessMemory.PeakMiB():F0} MiB during the save");
            }
            if (gpu?.Sample() is { } reading)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {device}: GPU memory used {reading.UsedMiB:F0} MiB, peak used {reading.PeakUsedMiB:F0} MiB of {reading.TotalMiB:F0} MiB"));
            string layersNote = session.ShardedOptimizer is { Mode: ShardingMode.Parameters } full
                ? string.Create(CultureInfo.InvariantCulture, $"; decoder layers sharded: {full.ShardedLayers}, root unit kept whole {full.RootElements / 1e6:F1} M parameters, gathered layer weights held at once at most {Mib(full.PeakGatheredLayerBytes):F0} MiB (largest layer {Mib(full.LargestLayerBytes):F0} MiB)")
                : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {group.WorldSize} rank(s) {mode,-14} rank {group.Rank}: {n / 1e6:F1} M trained parameters; held between steps: weights {Mib(weights):F0} + gradients {Mib(gradients):F0} + AdamW {Mib(adamW):F0} + master shard {Mib(master):F0} + EMA {Mib(ema):F0} = {Mib(state):F0} MiB ({(double)state / n:F2} B/param); " +
                $"RSS after building the model {Mib(afterModel):F0} MiB, before the steps {before:F0} MiB, peak over 2 steps {peak:F0} MiB; {seconds:F1} s/step{layersNote}{save}"));
            return 0;
        }
        finally
        {
            if (group.Rank == 0 && Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    private static long Bytes(IEnumerable<torch.Tensor> tensors) => tensors.Sum(t => t.numel() * t.element_size());

    private static double Mib(long bytes) => bytes / 1048576.0;

    private static int Int(string value) => int.Parse(value, CultureInfo.InvariantCulture);

    private static string Option(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
