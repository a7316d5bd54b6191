using Bagel.Training.Loop;
using Bagel.Training.Optimization;
using TorchSharp.Modules;

namespace Bagel.Tests.Training.Loop;

[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class TrainerStepTimingTests
{
    private static async Task<(List<TrainingStepReport> Steps, Parameter[] Weights, AdamW Optimizer)> RunAsync(
        LoopFixture fixture, TinyPackedModel model, string checkpoints, bool flat)
    {
        var steps = new List<TrainingStepReport>();
        using Trainer trainer = new TrainerBuilder()
            .UseModel(model)
            .UseData(await fixture.PipelineAsync())
            .UseOptions(fixture.Configuration(checkpoints, totalSteps: 6))
            .UseFlatBufferOptimizer(flat)
            .OnStep(steps.Add)
            .Build();
        await trainer.RunAsync(TestContext.Current.CancellationToken);
        return (steps, [.. model.Module.parameters()], trainer.Optimizer);
    }

    [Fact]
    public async Task EveryStepReportsItsWallTimeSplit()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 3);
        var (steps, _, _) = await RunAsync(fixture, model, "ckpt", flat: false);

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
    public async Task TheFlatBufferOptimizerTrainsBitForBitAsTorchSharpsAdamW()
    {
        using var fixture = new LoopFixture();
        using var perTensorModel = new TinyPackedModel(seed: 3);
        using var flatModel = new TinyPackedModel(seed: 3);
        var (perTensor, perTensorWeights, _) = await RunAsync(fixture, perTensorModel, "per-tensor", flat: false);
        var (flat, flatWeights, optimizer) = await RunAsync(fixture, flatModel, "flat", flat: true);

        var flatOptimizer = Assert.IsType<FlatBufferAdamW>(optimizer);
        Assert.True(flatOptimizer.FlatSteps > 0, $"no step ran on the flat buffers ({flatOptimizer.FallbackSteps} per-parameter steps)");
        Assert.Equal(perTensor.Select(s => (s.Step, s.TotalLoss, s.GradNorm)), flat.Select(s => (s.Step, s.TotalLoss, s.GradNorm)));
        Assert.All(perTensorWeights.Zip(flatWeights), pair => Assert.True(pair.First.Equals(pair.Second)));
    }
}
