using Bagel.Core.SafeTensors;
using Bagel.Models.Lora;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Options;
using Bagel.Training.Precision;
using Bagel.Training.Recipes;

namespace Bagel.Tests.Training.Lora;

/// <summary>LoRA through the trainer on the tiny preset, in bf16 mixed precision (bf16 base, float32 master adapters) and
/// in fp32: it learns with the base frozen, resumes bit for bit, and its checkpoints are small.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class LoraTrainingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Adapters on every attention and MLP projection of both experts (rank 4) and on <c>llm2vae</c> and <c>lm_head</c>:
    /// the tiny preset's base is randomly initialised and its <c>llm2vae</c> starts at zero, so with it frozen the velocity
    /// prediction would stay 0 and the MSE could not move; <c>llm2vae</c> gets rank 32 of its 64 outputs through PEFT's
    /// rank_pattern (a rank-4 bottleneck there caps how much of the velocity the model can express).
    /// </summary>
    private static LoraOptions Lora => new()
    {
        Rank = 4, Alpha = 8,
        TargetModules = [LoraTargets.RegexPrefix + "(?:" + LoraTargets.LanguageModel[LoraTargets.RegexPrefix.Length..] + @")|llm2vae|language_model\.lm_head"],
        RankPattern = [new("llm2vae", 32)], AlphaPattern = [new("llm2vae", 64)],
    };

    private static void LoraFlags(TrainingConfiguration config) => config.Training.Lr = 1e-2;

    private static async Task<(int Exit, string Stderr, List<TrainingStepReport> Steps)> RunAsync(string results, int steps, int saveEvery, bool lora,
        string precision = TrainingPrecisionNames.Auto, int keepLast = 1)
    {
        var reports = new List<TrainingStepReport>();
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var options = new TinyPresetOptions
        {
            ResultsDir = results, TotalSteps = steps, SaveEvery = saveEvery, KeepLastCheckpoints = keepLast, OnStep = reports.Add,
            Configure = lora ? LoraFlags : null, Lora = lora ? Lora : null, Precision = precision,
            Presentation = new TrainCommandOptions { ShowProgress = false, ColorLogs = false },
        };
        int exit = await TinyPreset.RunAsync(options, stdout, stderr, Ct);
        return (exit, stderr.ToString(), reports);
    }

    /// <summary>The last-5 / first-5 ratios of the MSE and the CE, and their summary.</summary>
    private static (double Mse, double Ce, string Summary) Ratios(List<TrainingStepReport> reports)
    {
        double Mean(IEnumerable<double> values) => values.Average();
        double mseFirst = Mean(reports.Take(5).Select(r => r.Mse)), mseLast = Mean(reports.TakeLast(5).Select(r => r.Mse));
        double ceFirst = Mean(reports.Take(5).Select(r => r.Ce)), ceLast = Mean(reports.TakeLast(5).Select(r => r.Ce));
        return (mseLast / mseFirst, ceLast / ceFirst,
            $"mse {mseFirst:F4} -> {mseLast:F4} ({mseLast / mseFirst:F3}x), ce {ceFirst:F4} -> {ceLast:F4} ({ceLast / ceFirst:F3}x)");
    }

    private static long FolderBytes(string folder) => new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);

    /// <summary>
    /// LoRA in bf16 mixed precision (the issue's "the base stays frozen, and in bf16 when the run is bf16"): 100 steps
    /// reach the thresholds (MSE last-5/first-5 0.795×, CE 0.192×; fewer steps do not reach the MSE's 0.8×: 0.84× at 60,
    /// 0.83× at 80); the first 40 of them equal 20 steps, a resume and 20 more bit for bit (the schedule is
    /// constant, so the longer run serves as the straight one and the test stays short); the checkpoints hold the
    /// adapters only, float32 in PEFT's layout, under 5 % of a full fine-tuning checkpoint. The learning thresholds are
    /// checked here only; the fp32 LoRA run is checked for resume below.
    /// </summary>
    [Fact]
    public async Task InBf16TheTinyPresetWithLoraLearnsWithTheBaseFrozenResumesBitForBitAndItsCheckpointIsSmall()
    {
        using var folder = new TempDirectory();
        const int steps = 100, half = 20;
        string lora = Path.Combine(folder.Path, "lora"), resumed = Path.Combine(folder.Path, "resumed");
        // Checkpoints (and validation renders, which run LoRA-bf16 sampling with the EMA adapters) at 40, 80 and 100.
        (int exit, string stderr, List<TrainingStepReport> reports) = await RunAsync(lora, steps, 2 * half, lora: true, "bf16", keepLast: 3);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        Assert.Contains("LoRA adapters; the base model's", stderr, StringComparison.Ordinal); // the log counts what trains
        (double mse, double ce, string summary) = Ratios(reports);
        Assert.True(mse <= 0.8 && ce <= 0.5, summary);

        // 20 steps, then a resume to 40: the straight run's first 40 steps and its checkpoint at 40, bit for bit.
        (exit, stderr, List<TrainingStepReport> first) = await RunAsync(resumed, half, half, lora: true, "bf16");
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        (exit, stderr, List<TrainingStepReport> second) = await RunAsync(resumed, 2 * half, half, lora: true, "bf16");
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        Assert.Contains("Training from step 20 to total_steps 40.", stderr, StringComparison.Ordinal);
        static (long, double, double, double, double) Figures(TrainingStepReport r) => (r.Step, r.Mse, r.Ce, r.GradNorm, r.LearningRate);
        Assert.Equal(reports.Take(2 * half).Select(Figures), first.Concat(second).Select(Figures));
        string at40 = Path.Combine(lora, "checkpoints", CheckpointLayout.FolderName(2 * half)), resumedAt40 = CheckpointCatalog.FindLatest(Path.Combine(resumed, "checkpoints"))!.Folder;
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName })
            Assert.True(File.ReadAllBytes(Path.Combine(at40, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(resumedAt40, file))), file);

        // The checkpoint holds the adapters only, float32 in PEFT's key layout, with their AdamW state and EMA.
        CheckpointInfo checkpoint = CheckpointCatalog.FindLatest(Path.Combine(lora, "checkpoints"))!;
        Assert.Equal(steps, checkpoint.CompletedSteps);
        using (ISafeTensorsSource weights = SafeTensorsCheckpoint.Open(Path.Combine(checkpoint.Folder, "model.safetensors")))
        {
            Assert.All(weights.Tensors, t => Assert.Matches(@"^base_model\.model\..+\.lora_[AB]\.weight$", t.Name));
            Assert.All(weights.Tensors, t => Assert.Equal(SafeTensorDType.F32, t.DType));
            Assert.Contains(weights.Tensors, t => t.Name == "base_model.model.language_model.model.layers.1.mlp_moe_gen.down_proj.lora_B.weight");
            Assert.Contains(weights.Tensors, t => t.Name == "base_model.model.llm2vae.lora_A.weight");
        }
        using (ISafeTensorsSource ema = SafeTensorsCheckpoint.Open(Path.Combine(checkpoint.Folder, "ema.safetensors")))
        {
            Assert.All(ema.Tensors, t => Assert.Contains(".lora_", t.Name, StringComparison.Ordinal));
            Assert.All(ema.Tensors, t => Assert.Equal(SafeTensorDType.F32, t.DType));
        }

        // Under 5 % of a full fine-tuning checkpoint of the same model (one step of the plain preset).
        string full = Path.Combine(folder.Path, "full");
        (exit, stderr, _) = await RunAsync(full, 1, 1, lora: false, "fp32");
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        long loraBytes = FolderBytes(checkpoint.Folder), fullBytes = FolderBytes(CheckpointCatalog.FindLatest(Path.Combine(full, "checkpoints"))!.Folder);
        Assert.True(loraBytes < 0.05 * fullBytes, $"LoRA checkpoint {loraBytes:N0} bytes, full {fullBytes:N0} bytes ({100.0 * loraBytes / fullBytes:F2} %); {summary}");
        Console.Error.WriteLine($"LORA-FIGURES bf16 {summary}; checkpoint {loraBytes:N0} vs {fullBytes:N0} bytes ({100.0 * loraBytes / fullBytes:F2} %)");
    }

    [Fact]
    public async Task FortyStepsStraightEqualTwentyThenAResumeAndTwentyMoreBitForBit()
    {
        using var folder = new TempDirectory();
        string straight = Path.Combine(folder.Path, "straight"), resumed = Path.Combine(folder.Path, "resumed");
        (int exit, string stderr, List<TrainingStepReport> all) = await RunAsync(straight, 40, 20, lora: true, "fp32");
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        (exit, stderr, List<TrainingStepReport> first) = await RunAsync(resumed, 20, 20, lora: true, "fp32");
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        (exit, stderr, List<TrainingStepReport> second) = await RunAsync(resumed, 40, 20, lora: true, "fp32");
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        Assert.Contains("Training from step 20 to total_steps 40.", stderr, StringComparison.Ordinal);

        List<TrainingStepReport> joined = [.. first, .. second];
        Assert.Equal(all.Select(r => r.Step), joined.Select(r => r.Step));
        for (int i = 0; i < all.Count; i++)
        {
            Assert.True((all[i].Mse, all[i].Ce, all[i].GradNorm, all[i].LearningRate) == (joined[i].Mse, joined[i].Ce, joined[i].GradNorm, joined[i].LearningRate),
                $"step {i}: straight mse {all[i].Mse:R} ce {all[i].Ce:R} norm {all[i].GradNorm:R}, resumed mse {joined[i].Mse:R} ce {joined[i].Ce:R} norm {joined[i].GradNorm:R}");
        }
        string a = CheckpointCatalog.FindLatest(Path.Combine(straight, "checkpoints"))!.Folder, b = CheckpointCatalog.FindLatest(Path.Combine(resumed, "checkpoints"))!.Folder;
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName })
            Assert.True(File.ReadAllBytes(Path.Combine(a, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b, file))), file);
    }
}
