using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using TorchSharp.Modules;

namespace Bagel.Tests.Training.Loop;

/// <summary>The optimizer step as the trainer runs it: its reported wall-time split, and the flat-buffer AdamW option.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class TrainerOptimizerStepTests
{
    private static async Task<(TrainingRunResult Result, List<TrainingStepReport> Steps, AdamW Optimizer)> RunAsync(
        LoopFixture fixture, TinyPackedModel model, TrainingConfiguration configuration, bool flat, long? stopAfterStep = null, bool fold = true)
    {
        var steps = new List<TrainingStepReport>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        using Trainer trainer = new TrainerBuilder()
            .UseModel(model)
            .UseData(await fixture.PipelineAsync())
            .UseOptions(configuration)
            .UseFlatBufferOptimizer(flat)
            .OnStep(steps.Add)
            .OnStep(s => { if (s.Step == stopAfterStep) stop.Cancel(); })
            .Build();
        if (trainer.Optimizer is FlatBufferAdamW flatOptimizer) flatOptimizer.FoldStepperWork = fold;
        TrainingRunResult result = await trainer.RunAsync(stop.Token);
        return (result, steps, trainer.Optimizer);
    }

    [Fact]
    public async Task EveryStepReportsItsWallTimeSplit()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 3);
        var (_, steps, _) = await RunAsync(fixture, model, fixture.Configuration("ckpt", totalSteps: 6), flat: false);

        Assert.Equal(6, steps.Count);
        Assert.All(steps, s =>
        {
            Assert.True(s.ForwardBackwardSeconds > 0 && s.OptimizerStepSeconds > 0 && s.DataWaitSeconds >= 0, $"step {s.Step}: {s}");
            OptimizerStepResult parts = s.OptimizerStep;
            Assert.True(parts.ClipSeconds > 0 && parts.AdamWSeconds > 0 && parts.EmaSeconds > 0 && parts.ZeroGradSeconds > 0, $"step {s.Step}: {parts}");
            Assert.True(parts.ClipSeconds + parts.AdamWSeconds + parts.EmaSeconds + parts.ZeroGradSeconds <= s.OptimizerStepSeconds,
                $"step {s.Step}: the parts {parts} exceed the whole {s.OptimizerStepSeconds}");
        });
    }

    [Fact]
    public async Task TheFlatBufferOptimizerTrainsAndResumesBitForBitAsTorchSharpsAdamW()
    {
        using var fixture = new LoopFixture();
        TrainingConfiguration Configuration(string run) => fixture.Configuration(run, totalSteps: 8, autoResume: true);

        using var perTensorModel = new TinyPackedModel(seed: 3);
        var (_, perTensor, _) = await RunAsync(fixture, perTensorModel, Configuration("per-tensor"), flat: false);

        // The flat run stops after 4 steps and a new trainer over a differently initialised model resumes it.
        List<TrainingStepReport> head;
        AdamW firstOptimizer;
        using (var firstModel = new TinyPackedModel(seed: 3))
            (_, head, firstOptimizer) = await RunAsync(fixture, firstModel, Configuration("flat"), flat: true, stopAfterStep: 3);
        using var resumedModel = new TinyPackedModel(seed: 42);
        var (resumed, tail, resumedOptimizer) = await RunAsync(fixture, resumedModel, Configuration("flat"), flat: true);

        Assert.Equal(4, resumed.StartStep);
        foreach (AdamW optimizer in new[] { firstOptimizer, resumedOptimizer })
        {
            var flat = Assert.IsType<FlatBufferAdamW>(optimizer);
            Assert.True(flat.FlatSteps > 0 && flat.FallbackSteps == 0, $"{flat.FlatSteps} flat steps, {flat.FallbackSteps} per-parameter steps (every step must be flat)");
        }
        Assert.Equal(perTensor.Select(s => (s.Step, s.TotalLoss, s.GradNorm)), head.Concat(tail).Select(s => (s.Step, s.TotalLoss, s.GradNorm)));
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName })
        {
            Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "per-tensor", CheckpointLayout.FolderName(8), file), TestContext.Current.CancellationToken),
                await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "flat", CheckpointLayout.FolderName(8), file), TestContext.Current.CancellationToken));
        }
    }

    [Fact]
    public async Task ACheckpointOfThePerTensorOptimizerResumesInTheFusedDefaultBitForBit()
    {
        using var fixture = new LoopFixture();
        TrainingConfiguration Configuration(string run) => fixture.Configuration(run, totalSteps: 6, autoResume: true);

        using var straightModel = new TinyPackedModel(seed: 3);
        var (_, straight, _) = await RunAsync(fixture, straightModel, Configuration("straight"), flat: false);

        // Three steps with TorchSharp's AdamW and the per-tensor EMA, then the fused default resumes that checkpoint.
        List<TrainingStepReport> head;
        using (var firstModel = new TinyPackedModel(seed: 3))
            (_, head, _) = await RunAsync(fixture, firstModel, Configuration("crossed"), flat: false, stopAfterStep: 2);
        using var resumedModel = new TinyPackedModel(seed: 42);
        var (resumed, tail, optimizer) = await RunAsync(fixture, resumedModel, Configuration("crossed"), flat: true);

        Assert.Equal(3, resumed.StartStep);
        var flat = Assert.IsType<FlatBufferAdamW>(optimizer);
        Assert.Equal(0, flat.FallbackSteps);
        Assert.Equal(straight.Select(s => (s.Step, s.TotalLoss, s.GradNorm)), head.Concat(tail).Select(s => (s.Step, s.TotalLoss, s.GradNorm)));
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName })
        {
            Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "straight", CheckpointLayout.FolderName(6), file), TestContext.Current.CancellationToken),
                await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "crossed", CheckpointLayout.FolderName(6), file), TestContext.Current.CancellationToken));
        }
    }

    [Fact]
    public async Task FoldingTheClipScaleEmaAndZeroingIntoTheFusedPassChangesNoBitOfARunOrItsResume()
    {
        using var fixture = new LoopFixture();
        TrainingConfiguration Configuration(string run)
        {
            TrainingConfiguration configuration = fixture.Configuration(run, totalSteps: 8, saveEvery: 4, autoResume: true);
            configuration.Training.MaxGradNorm = 0.05; // clipping active on some steps at least
            return configuration;
        }

        using var separateModel = new TinyPackedModel(seed: 3);
        var (_, separate, separateOptimizer) = await RunAsync(fixture, separateModel, Configuration("separate"), flat: true, fold: false);

        // The folded run stops after 4 steps and a new trainer resumes it.
        List<TrainingStepReport> head;
        AdamW firstOptimizer;
        using (var firstModel = new TinyPackedModel(seed: 3))
            (_, head, firstOptimizer) = await RunAsync(fixture, firstModel, Configuration("folded"), flat: true, stopAfterStep: 3);
        using var resumedModel = new TinyPackedModel(seed: 42);
        var (resumed, tail, resumedOptimizer) = await RunAsync(fixture, resumedModel, Configuration("folded"), flat: true);

        Assert.Equal(4, resumed.StartStep);
        Assert.Equal(0, Assert.IsType<FlatBufferAdamW>(separateOptimizer).FoldedBucketSteps);
        Assert.All(separate, s => Assert.Equal(0, s.OptimizerStep.FoldedBuckets));
        foreach (AdamW optimizer in new[] { firstOptimizer, resumedOptimizer })
        {
            var flat = Assert.IsType<FlatBufferAdamW>(optimizer);
            Assert.True(flat.FoldedBucketSteps > 0 && flat.FallbackSteps == 0, $"{flat.FoldedBucketSteps} folded bucket steps, {flat.FallbackSteps} per-parameter steps");
        }
        Assert.All(head.Concat(tail), s => Assert.True(s.OptimizerStep.FoldedBuckets > 0 && s.OptimizerStep.FoldedEmaTensors > 0, $"step {s.Step} folded nothing"));
        Assert.Contains(separate, s => s.GradNorm > 0.05);
        Assert.Equal(separate.Select(s => (s.Step, s.TotalLoss, s.GradNorm)), head.Concat(tail).Select(s => (s.Step, s.TotalLoss, s.GradNorm)));
        foreach (long step in new long[] { 4, 8 })
        {
            foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName })
            {
                Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "separate", CheckpointLayout.FolderName(step), file), TestContext.Current.CancellationToken),
                    await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "folded", CheckpointLayout.FolderName(step), file), TestContext.Current.CancellationToken));
            }
        }
    }
}
