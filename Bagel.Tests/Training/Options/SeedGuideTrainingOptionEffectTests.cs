using System.Globalization;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Options;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Tests.Training.Options;

/// <summary>
/// The seed guide's training flags, each from a real command line through the <see cref="TrainerBuilder"/> to what the
/// run did: steps, learning rates, parameter updates, EMA weights, optimizer state, checkpoint folders, log lines.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // the tiny model and the trainer seed torch's global generator
public sealed class SeedGuideTrainingOptionEffectTests
{
    private static Dictionary<string, torch.Tensor> Snapshot(TinyPackedModel model) =>
        model.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    private static double MaxAbsChange(Dictionary<string, torch.Tensor> before, TinyPackedModel model) =>
        model.Module.named_parameters().Max(p => (p.parameter.detach() - before[p.name]).abs().max().item<float>());

    private static string[] CheckpointFolders(string checkpointDir) =>
        [.. Directory.GetDirectories(checkpointDir).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    [Fact]
    public async Task TotalStepsIsTheNumberOfStepsTrainedAndTheFinalCheckpoint()
    {
        using var fixture = new OptionEffectFixture();
        using var model = new TinyPackedModel(seed: 1);
        OptionEffectRun run = await fixture.TrainAsync(fixture.Bind("--total_steps", "3"), model);

        Assert.Equal(3, run.Result.CompletedSteps);
        Assert.Equal([0L, 1L, 2L], run.Steps.Select(s => s.Step));
        Assert.Equal(CheckpointLayout.FolderName(3), Path.GetFileName(run.Result.LastCheckpoint));
    }

    [Fact]
    public async Task LrIsTheSizeOfTheFirstAdamWUpdateWithoutWarmup()
    {
        using var fixture = new OptionEffectFixture();
        using var model = new TinyPackedModel(seed: 1);
        Dictionary<string, torch.Tensor> before = Snapshot(model);
        OptionEffectRun run = await fixture.TrainAsync(fixture.Bind("--lr", "0.5", "--warmup_steps", "0"), model);

        Assert.Equal(0.5, run.Steps.Single().LearningRate, 12);
        // AdamW's first update is lr · m̂/(√v̂ + ε) = lr · g/|g| (ε = 1e-15, no weight decay): every moved weight moves by lr.
        Assert.Equal(0.5, MaxAbsChange(before, model), 4);
    }

    [Fact]
    public async Task WarmupStepsMakeTheFirstUpdateUseLrZero()
    {
        using var fixture = new OptionEffectFixture();
        using var model = new TinyPackedModel(seed: 1);
        Dictionary<string, torch.Tensor> before = Snapshot(model);
        double changeAfterFirstStep = double.NaN;
        OptionEffectRun run = await fixture.TrainAsync(fixture.Bind("--lr", "0.1", "--warmup_steps", "2", "--total_steps", "2"), model,
            configure: b => b.OnStep(s => { if (s.Step == 0) changeAfterFirstStep = MaxAbsChange(before, model); }));

        Assert.Equal([0.0, 0.1 * 1 / 2], run.Steps.Select(s => s.LearningRate));
        Assert.Equal(0.0, changeAfterFirstStep);
        Assert.Equal(0.05, MaxAbsChange(before, model), 4);
    }

    [Theory]
    [InlineData("constant")]
    [InlineData("cosine")]
    public async Task LrSchedulerChoosesConstantOrCosineDecay(string scheduler)
    {
        using var fixture = new OptionEffectFixture();
        using var model = new TinyPackedModel(seed: 1);
        const double lr = 0.1, minLr = 0.01;
        const int total = 3;
        OptionEffectRun run = await fixture.TrainAsync(fixture.Bind("--lr_scheduler", scheduler, "--lr", "0.1", "--min_lr", "0.01",
            "--warmup_steps", "0", "--total_steps", "3"), model);

        // training.md 5.3 with W = 0: constant keeps lr; cosine is lr · (c·(1−ρ)+ρ), c = ½(1+cos(π·k/total)), ρ = min_lr/lr.
        double Cosine(int k) => lr * ((0.5 * (1 + Math.Cos(Math.PI * k / total)) * (1 - (minLr / lr))) + (minLr / lr));
        double[] expected = scheduler == "constant" ? [lr, lr, lr] : [Cosine(0), Cosine(1), Cosine(2)];
        Assert.Equal(expected.Select(v => Math.Round(v, 12)), run.Steps.Select(s => Math.Round(s.LearningRate, 12)));
    }

    [Fact]
    public async Task EmaWeightsAfterAStepAreDecayTimesTheInitialPlusTheRestTimesTheUpdated()
    {
        using var fixture = new OptionEffectFixture();
        using var model = new TinyPackedModel(seed: 1);
        Dictionary<string, torch.Tensor> initial = Snapshot(model);
        Dictionary<string, torch.Tensor>? ema = null;
        await fixture.TrainAsync(fixture.Bind("--ema", "0.25", "--lr", "0.1"), model,
            inspect: t => ema = t.EmaModule.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone()));

        Assert.NotNull(ema);
        foreach (var (name, updated) in model.Module.named_parameters())
        {
            torch.Tensor expected = (initial[name] * 0.25) + (updated.detach() * 0.75);
            Assert.True(ema[name].allclose(expected, rtol: 1e-5, atol: 1e-6), $"EMA of {name} does not follow decay 0.25");
            Assert.False(ema[name].allclose(updated.detach()), $"EMA of {name} equals the live weights");
        }
    }

    [Theory]
    [InlineData("0.001")]
    [InlineData("1000")]
    public async Task MaxGradNormClipsTheGradientAdamWReceives(string maxGradNorm)
    {
        using var fixture = new OptionEffectFixture();
        using var model = new TinyPackedModel(seed: 1);
        double firstMomentNorm = double.NaN;
        OptionEffectRun run = await fixture.TrainAsync(fixture.Bind("--max_grad_norm", maxGradNorm), model, inspect: t => firstMomentNorm = FirstMomentNorm(t.Optimizer));

        // After one step AdamW's exp_avg is (1 − β1)·g for the clipped gradient g, whose norm is min(total_norm, max_grad_norm).
        double limit = double.Parse(maxGradNorm, CultureInfo.InvariantCulture);
        double gradNorm = run.Steps.Single().GradNorm;
        Assert.True(gradNorm is > 0.001 and < 1000, $"the unclipped gradient norm {gradNorm} should lie between the two limits");
        Assert.Equal((1 - 0.9) * Math.Min(gradNorm, limit), firstMomentNorm, (1 - 0.9) * Math.Min(gradNorm, limit) * 1e-4);
    }

    private static double FirstMomentNorm(AdamW optimizer)
    {
        torch.optim.Optimizer.StateDictionary state = optimizer.state_dict();
        double squares = state.State.Cast<AdamW.State>().Sum(s => s.exp_avg.square().sum().item<float>());
        return Math.Sqrt(squares);
    }

    [Fact]
    public async Task SaveEveryWritesAFolderEveryThatManyStepsAndAtTheEnd()
    {
        using var fixture = new OptionEffectFixture();
        using var model = new TinyPackedModel(seed: 1);
        string checkpoints = Path.Combine(fixture.Root, "every2");
        await fixture.TrainAsync(fixture.Bind("--save_every", "2", "--total_steps", "5", "--checkpoint_dir", checkpoints), model);

        Assert.Equal([CheckpointLayout.FolderName(2), CheckpointLayout.FolderName(4), CheckpointLayout.FolderName(5)], CheckpointFolders(checkpoints));
    }

    [Fact]
    public async Task CheckpointDirIsWhereTheCheckpointFoldersGo()
    {
        using var fixture = new OptionEffectFixture();
        using var model = new TinyPackedModel(seed: 1);
        string checkpoints = Path.Combine(fixture.Root, "elsewhere", "ckpts");
        OptionEffectRun run = await fixture.TrainAsync(fixture.Bind("--checkpoint-dir", checkpoints), model);

        Assert.Equal(Path.Combine(checkpoints, CheckpointLayout.FolderName(1)), run.Result.LastCheckpoint);
        Assert.True(File.Exists(Path.Combine(run.Result.LastCheckpoint, CheckpointLayout.ModelFileName)));
        Assert.False(Directory.Exists(Path.Combine(fixture.Root, "checkpoints")));
    }

    [Fact]
    public async Task LogEveryLogsEveryThatManySteps()
    {
        using var fixture = new OptionEffectFixture();
        using var model = new TinyPackedModel(seed: 1);
        using var logs = new CollectingLoggerProvider();
        await fixture.TrainAsync(fixture.Bind("--log_every", "3", "--total_steps", "4"), model, configure: b => b.UseLogger(logs));

        Assert.Equal(["(step=0000000)", "(step=0000003)"], logs.Messages.Where(m => m.StartsWith("(step=", StringComparison.Ordinal)).Select(m => m[..14]));
    }

    [Fact]
    public async Task ResumeFromLoadsTheFoldersWeightsAndContinuesAfterItsStep()
    {
        using var fixture = new OptionEffectFixture();
        using var first = new TinyPackedModel(seed: 1);
        OptionEffectRun trained = await fixture.TrainAsync(fixture.Bind("--total_steps", "2", "--checkpoint_dir", Path.Combine(fixture.Root, "a")), first);

        // A differently initialised model, resumed from the folder of step 2 with nothing left to train: it ends as the first one.
        using var second = new TinyPackedModel(seed: 50);
        OptionEffectRun resumed = await fixture.TrainAsync(fixture.Bind("--resume_from", trained.Result.LastCheckpoint, "--total_steps", "2",
            "--checkpoint_dir", Path.Combine(fixture.Root, "b")), second);

        Assert.Equal(2, resumed.Result.StartStep);
        Assert.Empty(resumed.Steps);
        foreach (var ((name, a), (_, b)) in first.Module.named_parameters().Zip(second.Module.named_parameters()))
            Assert.True(a.bytes.SequenceEqual(b.bytes), $"{name} was not loaded from resume_from");

        using var third = new TinyPackedModel(seed: 50);
        OptionEffectRun continued = await fixture.TrainAsync(fixture.Bind("--resume_from", trained.Result.LastCheckpoint, "--total_steps", "3",
            "--checkpoint_dir", Path.Combine(fixture.Root, "c")), third);
        Assert.Equal([2L], continued.Steps.Select(s => s.Step));
    }

    [Fact]
    public async Task AutoResumeContinuesFromTheLatestFolderOfCheckpointDir()
    {
        using var fixture = new OptionEffectFixture();
        string checkpoints = Path.Combine(fixture.Root, "auto");
        using (var model = new TinyPackedModel(seed: 1))
            await fixture.TrainAsync(fixture.Bind("--total_steps", "2", "--checkpoint_dir", checkpoints), model);

        using var without = new TinyPackedModel(seed: 1);
        OptionEffectRun fresh = await fixture.TrainAsync(fixture.Bind("--total_steps", "1", "--checkpoint_dir", checkpoints), without);
        using var with = new TinyPackedModel(seed: 1);
        OptionEffectRun resumed = await fixture.TrainAsync(fixture.Bind("--auto_resume", "--total_steps", "3", "--checkpoint_dir", checkpoints), with);

        Assert.Equal(0, fresh.Result.StartStep);
        Assert.Equal(2, resumed.Result.StartStep);
        Assert.Equal([2L], resumed.Steps.Select(s => s.Step));
    }
}
