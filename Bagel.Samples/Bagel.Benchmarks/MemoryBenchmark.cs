using System.Diagnostics;
using System.Globalization;
using Bagel.Data.Example;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Training.Loop;
using Bagel.Training.Models;
using Bagel.Training.Precision;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Bagel.Benchmarks;

/// <summary>
/// Peak memory of a training step per parameter and per token in three modes: fp32, bf16 mixed precision (float32
/// masters, AdamW state and EMA, plus a bf16 working copy) and bf16 with activation checkpointing. The model is the
/// hidden-896 MoT composite (Qwen2.5-0.5B widths: 14 heads, 2 KV heads, intermediate 4864) with a small SigLIP and
/// the tiny FLUX-shaped VAE, trained two steps on the example data packed to <c>--tokens</c> per batch, each mode in a
/// fresh child process (glibc told to return freed blocks, so RSS follows the live bytes). Figures: steady RSS after
/// the second step minus the baseline, per parameter; peak RSS minus steady, per token and per token and layer. Given
/// two layer counts (<c>--layers 2,4</c>) it also prints one MoT layer's share, from the difference between the runs:
/// its state per parameter, its activations per token, the fixed activations of the rest, and the peak extrapolated to
/// <c>--predict-layers</c> (default 24, the Qwen2.5-0.5B depth).
/// </summary>
internal static class MemoryBenchmark
{
    public const string ProbeCommand = "memory-probe";

    private static readonly string[] AllModes = ["fp32", "bf16", "bf16-ckpt"];

    public static int Run(string[] args)
    {
        int[] layerCounts = [.. StringOption(args, "--layers", "2").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(l => int.Parse(l, CultureInfo.InvariantCulture))];
        int tokens = IntOption(args, "--tokens", 1024), vocab = IntOption(args, "--vocab", 32768), predict = IntOption(args, "--predict-layers", 24);
        string[] modes = StringOption(args, "--modes", string.Join(',', AllModes)).Split(',', StringSplitOptions.RemoveEmptyEntries);
        Console.WriteLine($"memory: hidden 896 MoT, {string.Join(" and ", layerCounts)} layers, vocabulary {vocab}, small SigLIP (128 x 2) and tiny VAE; one packed batch of ~{tokens} tokens; 2 steps per mode, each in a fresh process");
        Console.WriteLine("mode       layers  params(M)  trainable(M)  steady MiB  bytes/param  peak MiB  act. MiB  bytes/token  bytes/token/layer  tokens");
        int failed = 0;
        var runs = new Dictionary<(string Mode, int Layers), Probe>();
        foreach (int layers in layerCounts)
        {
            foreach (string mode in modes)
            {
                string[]? figures = Child(mode, layers, tokens, vocab);
                if (figures is null)
                {
                    failed++;
                    continue;
                }
                // params trainable baseline steady peak tokens
                var probe = new Probe(D(figures[0]), D(figures[1]), D(figures[2]), D(figures[3]), D(figures[4]), D(figures[5]));
                runs[(mode, layers)] = probe;
                double stateMiB = probe.Steady - probe.Baseline, activationMiB = probe.Peak - probe.Steady;
                double perParam = stateMiB * 1048576 / probe.Parameters, perToken = activationMiB * 1048576 / probe.Tokens;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{mode,-10} {layers,6}  {probe.Parameters / 1e6,9:F1}  {probe.Trainable / 1e6,12:F1}  {stateMiB,10:F0}  {perParam,11:F2}  {probe.Peak - probe.Baseline,8:F0}  {activationMiB,8:F0}  {perToken,11:F0}  {perToken / layers,17:F0}  {probe.Tokens,6:F0}"));
            }
        }
        PrintPerLayer(runs, modes, layerCounts, predict);
        return failed == 0 ? 0 : 1;
    }

    /// <summary>One probe's figures: parameters, trainable parameters, RSS before the model (MiB), after step 1 (MiB), peak (MiB), tokens of step 1.</summary>
    private sealed record Probe(double Parameters, double Trainable, double Baseline, double Steady, double Peak, double Tokens);

    /// <summary>
    /// With two layer counts, the difference between them isolates one MoT decoder layer from everything else (the
    /// vocabulary-sized embedding, head and logits, the ViT, the VAE, the runtime): its parameters, its training state
    /// per parameter (steady RSS difference over parameter difference) and its activations per token (difference of
    /// peak minus steady, per layer, per token). The last column extrapolates the peak RSS to <paramref name="predict"/> layers.
    /// </summary>
    private static void PrintPerLayer(Dictionary<(string Mode, int Layers), Probe> runs, string[] modes, int[] layerCounts, int predict)
    {
        if (layerCounts.Length < 2) return;
        int low = layerCounts.Min(), high = layerCounts.Max();
        Console.WriteLine($"per MoT decoder layer (from the {low}- and {high}-layer runs), and the peak extrapolated to {predict} layers:");
        Console.WriteLine("mode       params/layer(M)  state bytes/param  act. MiB/layer  act. bytes/token/layer  fixed act. MiB  predicted params(M)  predicted peak MiB");
        foreach (string mode in modes)
        {
            if (!runs.TryGetValue((mode, low), out Probe? a) || !runs.TryGetValue((mode, high), out Probe? b)) continue;
            double layers = high - low;
            double paramsPerLayer = (b.Parameters - a.Parameters) / layers;
            double statePerParam = (b.Steady - a.Steady) * 1048576 / (b.Parameters - a.Parameters);
            double actPerLayer = ((b.Peak - b.Steady) - (a.Peak - a.Steady)) / layers;
            double fixedAct = (a.Peak - a.Steady) - actPerLayer * low;
            double predictedParams = a.Parameters + (predict - low) * paramsPerLayer;
            double predictedPeak = a.Peak - a.Baseline + (predict - low) * (b.Peak - a.Peak) / layers;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{mode,-10} {paramsPerLayer / 1e6,15:F2}  {statePerParam,17:F2}  {actPerLayer,14:F1}  {actPerLayer * 1048576 / b.Tokens,22:F0}  {fixedAct,14:F0}  {predictedParams / 1e6,19:F1}  {predictedPeak,18:F0}"));
        }
    }

    private static string[]? Child(string mode, int layers, int tokens, int vocab)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in new[] { ProbeCommand, mode, N(layers), N(tokens), N(vocab) }) info.ArgumentList.Add(a);
        // Return freed blocks to the system at once, so the RSS after a step is the live bytes, not glibc's cache.
        info.Environment["MALLOC_MMAP_THRESHOLD_"] = "65536";
        info.Environment["MALLOC_TRIM_THRESHOLD_"] = "0";
        info.Environment["MALLOC_ARENA_MAX"] = "2";
        using var child = Process.Start(info)!;
        string output = child.StandardOutput.ReadToEnd().Trim();
        child.WaitForExit();
        string[] parts = output.Split(' ');
        if (child.ExitCode == 0 && parts.Length == 6) return parts;
        Console.Error.WriteLine($"memory probe '{mode}' failed (exit {child.ExitCode}): {output}");
        return null;
    }

    /// <summary>The child: builds the composite, trains two steps in <c>mode</c>, prints
    /// <c>params trainable baselineMiB steadyMiB peakMiB tokens</c>.</summary>
    public static int RunProbe(string[] args)
    {
        string mode = args[0];
        int layers = int.Parse(args[1], CultureInfo.InvariantCulture), tokens = int.Parse(args[2], CultureInfo.InvariantCulture), vocab = int.Parse(args[3], CultureInfo.InvariantCulture);
        string folder = Path.Combine(Path.GetTempPath(), $"bagel-memory-bench-{Environment.ProcessId}");
        try
        {
            return ProbeAsync(mode, layers, tokens, vocab, folder).GetAwaiter().GetResult();
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<int> ProbeAsync(string mode, int layers, int tokens, int vocab, string folder)
    {
        ExampleDataSummary data = await new ExampleDataWriter(new ExampleDataOptions { OutputFolder = Path.Combine(folder, "data"), Overwrite = true }, NullLogger.Instance).WriteAsync();
        BagelTokenizerSetup tokenizer = BagelSpecialTokens.Apply(ByteLevelBpeTrainer.BytesOnly());
        var packing = new PackingOptions
        {
            ExpectedNumTokens = tokens, MaxNumTokens = tokens * 4 / 3, MaxNumTokensPerSample = 512, PreferBufferBefore = tokens / 2, MaxBufferSize = 16,
            TextCondDropoutProb = 0, VitCondDropoutProb = 0, VaeCondDropoutProb = 0, MaxLatentSize = 4,
        };
        var factory = new DataPipelineFactory(tokenizer, new DataPipelineOptions { NumWorkers = 1, PrefetchFactor = 1, DataSeed = 42, Packing = packing });
        DataPipeline pipeline = await factory.CreateFromFilesAsync(data.DatasetInfoPath, data.MixConfigPath);
        BagelConfig config = TrainSetup.SmallConfig(Math.Max(vocab, tokenizer.Tokenizer.Count), layers);

        GC.Collect();
        double baseline = ProcessMemory.ResidentBytes() / 1048576.0;
        torch.manual_seed(0);
        using var model = new BagelModel(config);
        using var vae = new FluxAutoEncoder(config.VaeConfig!);
        model.LanguageModel.Model.GradientCheckpointing = mode == "bf16-ckpt";
        long parameters = model.parameters().Sum(p => p.numel()), trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        var options = new TrainSetup.MemoryOptions(Path.Combine(folder, "run")).Configuration(steps: 2);
        double steady = 0, peak = 0;
        long seen = 0;
        using (Trainer trainer = new TrainerBuilder()
                   .UseModel(new BagelTrainingModel(model, vae, () => new BagelModel(config)))
                   .UseData(pipeline).UseOptions(options).UseLogger(NullLoggerFactory.Instance).UseDefaultMetricSinks(false)
                   .UsePrecision(mode == "fp32" ? TrainingPrecision.Fp32 : TrainingPrecision.Bf16Mixed)
                   .OnStep(report =>
                   {
                       if (report.Step != 1) return;
                       steady = ProcessMemory.ResidentBytes() / 1048576.0;
                       peak = ProcessMemory.PeakMiB();
                       seen = report.Tokens;
                   })
                   .Build())
        {
            await trainer.RunAsync();
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{parameters} {trainable} {baseline:F1} {steady:F1} {peak:F1} {seen}"));
        return 0;
    }

    private static string N(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static double D(string value) => double.Parse(value, CultureInfo.InvariantCulture);

    private static int IntOption(string[] args, string name, int fallback)
    {
        int at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static string StringOption(string[] args, string name, string fallback)
    {
        int at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
    }
}
