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
/// the second step minus the baseline, per parameter; peak RSS minus steady, per token and per token and layer.
/// </summary>
internal static class MemoryBenchmark
{
    public const string ProbeCommand = "memory-probe";

    private static readonly string[] AllModes = ["fp32", "bf16", "bf16-ckpt"];

    public static int Run(string[] args)
    {
        int layers = IntOption(args, "--layers", 2), tokens = IntOption(args, "--tokens", 1024), vocab = IntOption(args, "--vocab", 32768);
        string[] modes = StringOption(args, "--modes", string.Join(',', AllModes)).Split(',', StringSplitOptions.RemoveEmptyEntries);
        Console.WriteLine($"memory: hidden 896 MoT, {layers} layers, vocabulary {vocab}, small SigLIP (128 x 2) and tiny VAE; one packed batch of ~{tokens} tokens; 2 steps per mode, each in a fresh process");
        Console.WriteLine("mode       params(M)  trainable(M)  steady MiB  bytes/param  peak MiB  act. MiB  bytes/token  bytes/token/layer  tokens");
        int failed = 0;
        foreach (string mode in modes)
        {
            string[]? figures = Child(mode, layers, tokens, vocab);
            if (figures is null)
            {
                failed++;
                continue;
            }
            // params trainable baseline steady peak tokens
            double parameters = D(figures[0]), trainable = D(figures[1]), baseline = D(figures[2]), steady = D(figures[3]), peak = D(figures[4]), seen = D(figures[5]);
            double stateMiB = steady - baseline, activationMiB = peak - steady;
            double perParam = stateMiB * 1048576 / parameters, perToken = activationMiB * 1048576 / seen;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{mode,-10} {parameters / 1e6,9:F1}  {trainable / 1e6,12:F1}  {stateMiB,10:F0}  {perParam,11:F2}  {peak - baseline,8:F0}  {activationMiB,8:F0}  {perToken,11:F0}  {perToken / layers,17:F0}  {seen,6:F0}"));
        }
        return failed == 0 ? 0 : 1;
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
