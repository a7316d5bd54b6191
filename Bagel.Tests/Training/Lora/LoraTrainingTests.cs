using Bagel.Core.SafeTensors;
using Bagel.Models.Lora;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Options;
using Bagel.Training.Recipes;

namespace Bagel.Tests.Training.Lora;

/// <summary>LoRA through the trainer on the tiny preset: it learns with the base frozen, resumes bit for bit, and its
/// checkpoints are small.</summary>
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

    private static async Task<(int Exit, string Stderr, List<TrainingStepReport> Steps)> RunAsync(string results, int steps, int saveEvery, bool lora)
    {
        var reports = new List<TrainingStepReport>();
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var options = new TinyPresetOptions
        {
            ResultsDir = results, TotalSteps = steps, SaveEvery = saveEvery, KeepLastCheckpoints = 1, OnStep = reports.Add,
            Configure = lora ? LoraFlags : null, Lora = lora ? Lora : null,
            Presentation = new TrainCommandOptions { ShowProgress = false, ColorLogs = false },
        };
        int exit = await TinyPreset.RunAsync(options, stdout, stderr, Ct);
        return (exit, stderr.ToString(), reports);
    }

    private static long FolderBytes(string folder) => new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);

    [Fact]
    public async Task TheTinyPresetWithLoraOnBothExpertsLearnsWithTheBaseFrozenAndItsCheckpointIsSmall()
    {
        using var folder = new TempDirectory();
        const int steps = 100;
        string lora = Path.Combine(folder.Path, "lora");
        (int exit, string stderr, List<TrainingStepReport> reports) = await RunAsync(lora, steps, steps, lora: true);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        double Mean(IEnumerable<double> values) => values.Average();
        double mseFirst = Mean(reports.Take(5).Select(r => r.Mse)), mseLast = Mean(reports.TakeLast(5).Select(r => r.Mse));
        double ceFirst = Mean(reports.Take(5).Select(r => r.Ce)), ceLast = Mean(reports.TakeLast(5).Select(r => r.Ce));
        string summary = $"mse {mseFirst:F4} -> {mseLast:F4} ({mseLast / mseFirst:F3}x), ce {ceFirst:F4} -> {ceLast:F4} ({ceLast / ceFirst:F3}x)";
        Assert.True(mseLast <= 0.8 * mseFirst && ceLast <= 0.5 * ceFirst, summary);

        // The checkpoint holds the adapters only, in PEFT's key layout, with their AdamW state and EMA.
        CheckpointInfo checkpoint = CheckpointCatalog.FindLatest(Path.Combine(lora, "checkpoints"))!;
        using (ISafeTensorsSource weights = SafeTensorsCheckpoint.Open(Path.Combine(checkpoint.Folder, "model.safetensors")))
        {
            Assert.All(weights.Tensors, t => Assert.Matches(@"^base_model\.model\..+\.lora_[AB]\.weight$", t.Name));
            Assert.Contains(weights.Tensors, t => t.Name == "base_model.model.language_model.model.layers.1.mlp_moe_gen.down_proj.lora_B.weight");
            Assert.Contains(weights.Tensors, t => t.Name == "base_model.model.llm2vae.lora_A.weight");
        }
        using (ISafeTensorsSource ema = SafeTensorsCheckpoint.Open(Path.Combine(checkpoint.Folder, "ema.safetensors")))
            Assert.All(ema.Tensors, t => Assert.Contains(".lora_", t.Name, StringComparison.Ordinal));

        // Under 5 % of a full fine-tuning checkpoint of the same model (one step of the plain preset).
        string full = Path.Combine(folder.Path, "full");
        (exit, stderr, _) = await RunAsync(full, 1, 1, lora: false);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        long loraBytes = FolderBytes(checkpoint.Folder), fullBytes = FolderBytes(CheckpointCatalog.FindLatest(Path.Combine(full, "checkpoints"))!.Folder);
        Assert.True(loraBytes < 0.05 * fullBytes, $"LoRA checkpoint {loraBytes:N0} bytes, full {fullBytes:N0} bytes ({100.0 * loraBytes / fullBytes:F2} %); {summary}");
        Console.Error.WriteLine($"LORA-FIGURES {summary}; checkpoint {loraBytes:N0} vs {fullBytes:N0} bytes ({100.0 * loraBytes / fullBytes:F2} %)");
    }

    [Fact]
    public async Task FortyStepsStraightEqualTwentyThenAResumeAndTwentyMoreBitForBit()
    {
        using var folder = new TempDirectory();
        string straight = Path.Combine(folder.Path, "straight"), resumed = Path.Combine(folder.Path, "resumed");
        (int exit, string stderr, List<TrainingStepReport> all) = await RunAsync(straight, 40, 20, lora: true);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        (exit, stderr, List<TrainingStepReport> first) = await RunAsync(resumed, 20, 20, lora: true);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        (exit, stderr, List<TrainingStepReport> second) = await RunAsync(resumed, 40, 20, lora: true);
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
