using System.Diagnostics;
using System.Globalization;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Native;
using Bagel.Core.Randomness;
using Bagel.Data.Packing;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Lora;
using Bagel.Training.Lora;
using Bagel.Training.Loop;
using Bagel.Training.Loss;
using Bagel.Training.Models;
using Bagel.Training.Options;
using Bagel.Training.Precision;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Benchmarks;

/// <summary>
/// Peak memory of one LoRA training step against one full fine-tuning step of the same composite (the Qwen2.5-0.5B
/// widths of <see cref="TrainSetup.SmallConfig"/>: hidden 896, intermediate 4864, 14 heads / 2 KV heads, MoT, a small
/// SigLIP and the tiny VAE) on the same synthetic packed batch, each in float32 (<c>full</c>, <c>lora</c>) and in bf16
/// mixed precision (<c>full-bf16</c>: float32 masters and a bf16 working copy; <c>lora-bf16</c>: the frozen base cast to
/// bf16 in place, float32 master adapters and their bf16 working copy). Each mode runs in a fresh child process through
/// a <see cref="TrainingSession"/> (precision policy, AdamW, EMA, clipping: what the trainer holds) for two steps; it
/// prints the peak RSS (VmHWM) and the tensor bytes it tracks (weights, working copy, gradients, AdamW state, EMA), then
/// the parent prints the ratios.
/// </summary>
internal static class LoraBenchmark
{
    public const string StepCommand = "lora-step";

    public static int Run(string[] args)
    {
        string layers = Option(args, "--layers", "24"), vocab = Option(args, "--vocab", "32768"), tokens = Option(args, "--tokens", "1024");
        string rank = Option(args, "--rank", "16"), alpha = Option(args, "--alpha", "32"), targets = Option(args, "--targets", "llm");
        string checkpointing = args.Contains("--checkpointing") ? "on" : "off";
        Console.WriteLine($"lora: composite at hidden 896, {layers} MoT layers, vocabulary {vocab}, ~{tokens}-token pack, activation checkpointing {checkpointing}; " +
                          $"LoRA rank {rank}, alpha {alpha}, targets {targets}; load {File.ReadAllText("/proc/loadavg").Trim()}");
        var peaks = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (string mode in Option(args, "--modes", "full,lora,full-bf16,lora-bf16").Split(','))
        {
            if (!Modes.Contains(mode))
            {
                Console.Error.WriteLine($"Unknown mode '{mode}'; the modes are {string.Join(", ", Modes)}.");
                return 2;
            }
            double? peak = Child(StepCommand, mode, layers, vocab, tokens, rank, alpha, targets, checkpointing);
            if (peak is null) return 1;
            peaks[mode] = peak.Value;
        }
        foreach ((string a, string b) in new[] { ("lora", "full"), ("lora-bf16", "full-bf16"), ("lora-bf16", "lora"), ("lora-bf16", "full") })
        {
            if (peaks.TryGetValue(a, out double numerator) && peaks.TryGetValue(b, out double denominator))
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lora: peak RSS {a} / {b} = {numerator:F0} / {denominator:F0} MiB = {numerator / denominator:F3}"));
        }
        return 0;
    }

    /// <summary>The child: builds the composite, runs two steps in one mode and prints its figures (last line: PEAK_MIB value).</summary>
    public static int RunStep(string[] args)
    {
        TorchRuntime.EnsureLoaded();
        string mode = args[0];
        bool useLora = mode.StartsWith("lora", StringComparison.Ordinal);
        TrainingPrecision precision = mode.EndsWith("-bf16", StringComparison.Ordinal) ? TrainingPrecision.Bf16Mixed : TrainingPrecision.Fp32;
        int layers = Int(args[1]), vocab = Int(args[2]), tokens = Int(args[3]), rank = Int(args[4]);
        double alpha = double.Parse(args[5], CultureInfo.InvariantCulture);
        string targets = args[6];
        bool checkpointing = args[7] == "on";
        string folder = Path.Combine(Path.GetTempPath(), $"bagel-lora-bench-{Environment.ProcessId}");
        try
        {
            BagelConfig config = TrainSetup.SmallConfig(vocab, layers);
            torch.manual_seed(0);
            using var model = new BagelModel(config);
            model.LanguageModel.Model.GradientCheckpointing = checkpointing;
            using var vae = new FluxAutoEncoder(config.VaeConfig!);
            var trainable = new BagelTrainingModel(model, vae, () => new BagelModel(config));
            using LoraTrainableModel? lora = useLora
                ? new LoraTrainableModel(trainable, new LoraOptions { Rank = rank, Alpha = alpha, TargetModules = LoraTargets.Parse(targets) })
                : null;
            ITrainableModel stepped = (ITrainableModel?)lora ?? trainable;
            TrainingConfiguration options = TrainingConfiguration.Defaults();
            options.Training.CheckpointDir = Path.Combine(folder, "checkpoints");
            options.Training.ResultsDir = folder;
            options.Training.Lr = 1e-4;
            options.Training.WarmupSteps = 0;
            using PackedBatch batch = SyntheticBatch(vocab, tokens, config);
            using var session = new TrainingSession(stepped, options, new TrainingSessionOptions { Precision = precision });
            session.Restore();
            IPrecisionPolicy policy = session.Precision; // bf16: the working copy exists (and a LoRA base is bf16) from here
            policy.ComputeModel.Module.train();
            double before = ProcessMemory.ResetPeak();
            var watch = Stopwatch.StartNew();
            for (int step = 0; step < 2; step++)
            {
                using var scope = torch.NewDisposeScope();
                policy.BeforeForward();
                ModelLossOutputs outputs = policy.ComputeModel.Forward(batch);
                StepLoss loss = TrainingLoss.Combine(outputs.CePerToken, outputs.CeTokenWeights, outputs.MseSquaredError, session.LossWeights);
                loss.Total.backward();
                policy.AfterBackward();
                session.Stepper.Step(step, loss.Total.item<float>());
            }
            double seconds = watch.Elapsed.TotalSeconds / 2, peak = ProcessMemory.PeakMiB();
            long weights = Bytes(model.parameters()) + (lora is null ? 0 : Bytes(lora.Adapters.parameters()));
            long working = policy is Bf16MixedPrecisionPolicy bf16 ? Bytes(bf16.WorkingModule.parameters()) : 0;
            var trained = stepped.Module.parameters().Where(p => p.requires_grad).ToList();
            long trainedBytes = Bytes(trained), ema = Bytes(session.Ema.Module.parameters());
            string baseType = model.parameters().First().dtype.ToString();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {mode,-9}: {batch.SequenceLength} tokens, {trained.Sum(p => p.numel()) / 1e6:F2} M trained of {model.parameters().Sum(p => p.numel()) / 1e6:F1} M parameters (model in {baseType}); " +
                $"tracked: weights {Mib(weights):F0} + bf16 working copy {Mib(working):F0} + gradients {Mib(trainedBytes):F0} + AdamW state {Mib(2 * trainedBytes):F0} + EMA {Mib(ema):F0} = {Mib(weights + working + 3 * trainedBytes + ema):F0} MiB; " +
                $"RSS before the steps {before:F0} MiB, peak RSS over the steps {peak:F0} MiB (activations and temporaries ≈ {peak - before:F0} MiB above); {seconds:F1} s/step"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"PEAK_MIB {peak:F1}"));
            return 0;
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>T2I samples (a 60-token caption and a 64 px image to generate) and VLM samples (a 56 px ViT image and a
    /// 200-token answer) until the pack reaches <paramref name="tokens"/>; token ids are drawn below the vocabulary's
    /// four special ids.</summary>
    internal static PackedBatch SyntheticBatch(int vocab, int tokens, BagelConfig config)
    {
        var special = new BagelSpecialTokenIds(vocab - 4, vocab - 3, vocab - 2, vocab - 1);
        var options = new PackingOptions { MaxLatentSize = config.MaxLatentSize, TextCondDropoutProb = 0, VitCondDropoutProb = 0, VaeCondDropoutProb = 0 };
        var packer = new SequencePacker(options, special);
        var builder = new PackedBatchBuilder();
        var owned = new List<Tensor>();
        var samples = new List<PackableSample>();
        using var dropout = new SeededRandomSource(1);
        using var timesteps = new SeededRandomSource(2);
        var random = new Random(3);
        int[] Text(int length) => [.. Enumerable.Range(0, length).Select(_ => random.Next(vocab - 4))];
        try
        {
            for (int i = 0; builder.SequenceLength < tokens; i++)
            {
                var index = new SampleDataIndex("bench", 0, SourcePosition.Vlm(i));
                PackableSample sample = i % 2 == 0
                    ? new PackableSample(index, "t2i", [PlanItem.Text(true, false), PlanItem.NoisyVaeImage()], [Text(60)], [torch.rand(3, 64, 64) * 2 - 1])
                    : new PackableSample(index, "vlm", [PlanItem.VitImage(true), PlanItem.Text(false, loss: true)], [Text(200)], [torch.rand(3, 56, 56) * 2 - 1]);
                samples.Add(sample);
                packer.Pack(builder, sample, dropout, timesteps, owned);
            }
            return builder.Build(limits: config.BatchLimits);
        }
        finally
        {
            owned.ForEach(t => t.Dispose());
            samples.ForEach(s => s.Dispose());
        }
    }

    private static readonly string[] Modes = ["full", "lora", "full-bf16", "lora-bf16"];

    private static long Bytes(IEnumerable<Tensor> tensors) => tensors.Sum(t => t.numel() * t.element_size());

    private static double? Child(params string[] arguments)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (string a in arguments) info.ArgumentList.Add(a);
        using var child = Process.Start(info)!;
        double? peak = null;
        while (child.StandardOutput.ReadLine() is { } line)
        {
            if (line.StartsWith("PEAK_MIB ", StringComparison.Ordinal)) peak = double.Parse(line[9..], CultureInfo.InvariantCulture);
            else Console.WriteLine(line);
        }
        child.WaitForExit();
        if (child.ExitCode != 0 || peak is null)
        {
            Console.Error.WriteLine($"'{arguments[0]} {arguments[1]}' failed (exit {child.ExitCode}).");
            return null;
        }
        return peak;
    }

    private static double Mib(long bytes) => bytes / 1048576.0;

    private static int Int(string text) => int.Parse(text, CultureInfo.InvariantCulture);

    private static string Option(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
