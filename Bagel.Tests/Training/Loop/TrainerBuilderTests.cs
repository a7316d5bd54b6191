using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Training.Loop;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Loop;

[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class TrainerBuilderTests
{
    [Fact]
    public void BuildReportsEveryMissingPartAndBadOptionAtOnce()
    {
        TrainingConfiguration configuration = TrainingConfiguration.Defaults();
        configuration.Training.Lr = -1;
        configuration.Training.LogEvery = 0;
        configuration.Training.GradientAccumulationSteps = 0;

        var error = Assert.Throws<InvalidTrainingOptionsException>(() =>
            new TrainerBuilder().UseOptions(configuration).UseNonFiniteLimit(0).KeepLastCheckpoints(0).Build());

        string all = string.Join("\n", error.Failures);
        foreach (string expected in new[] { "lr", "log_every", "gradient_accumulation_steps", "UseModel", "UseData", "UseNonFiniteLimit", "KeepLastCheckpoints" })
            Assert.Contains(expected, all, StringComparison.Ordinal);
        Assert.Equal(7, error.Failures.Count);
    }

    [Fact]
    public async Task GradientAccumulationTakesThatManyBatchesPerStepFromACustomSource()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 5);
        var pipeline = await fixture.PipelineAsync();
        int taken = 0;
        async IAsyncEnumerable<PackedBatch> Counted(RankDataStatus? resume, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (PackedBatch batch in pipeline.ReadAsync(resume, cancellationToken))
            {
                taken++;
                yield return batch;
            }
        }
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps: 3);
        configuration.Training.GradientAccumulationSteps = 2;
        var steps = new List<TrainingStepReport>();
        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(Counted, pipeline.CaptureStatus).UseOptions(configuration).OnStep(steps.Add).Build();

        TrainingRunResult result = await trainer.RunAsync(TestContext.Current.CancellationToken);

        Assert.Equal(3, result.CompletedSteps);
        Assert.Equal(6, taken);
        Assert.All(steps, s => Assert.True(s.Samples >= 2, $"step {s.Step} saw {s.Samples} samples"));
        Assert.True(File.Exists(Path.Combine(result.LastCheckpoint, Bagel.Training.Checkpoints.CheckpointLayout.DataStatusFileName)));
    }

    [Fact]
    public async Task ATrainerRunsOnlyOnce()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 6);
        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(fixture.Configuration("ckpt", totalSteps: 1)).Build();
        await trainer.RunAsync(TestContext.Current.CancellationToken);
        await Assert.ThrowsAsync<InvalidOperationException>(() => trainer.RunAsync(TestContext.Current.CancellationToken));
    }
}
