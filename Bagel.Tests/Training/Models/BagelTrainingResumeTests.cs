using Bagel.Tests.Training.Loop;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;

namespace Bagel.Tests.Training.Models;

/// <summary>Exact resume with the real BAGEL composite, the real VAE encode and a 2-worker data pipeline.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class BagelTrainingResumeTests
{
    [Fact]
    [NeedsSharedData("tokenizer/qwen2.5")]
    public async Task StoppingAndResumingTheCompositeIsBitIdenticalToOneRun()
    {
        using var fixture = new LoopFixture();
        var (_, straight, straightModel) = await CompositeTrainingRuns.RunAsync(fixture, CompositeTrainingRuns.Configuration(fixture, "straight"), modelSeed: 1);
        var (first, head, firstModel) = await CompositeTrainingRuns.RunAsync(fixture, CompositeTrainingRuns.Configuration(fixture, "split"), modelSeed: 1, cancelAfterStep: 19);
        firstModel.Dispose();
        Assert.True(first.Cancelled);
        Assert.Equal(20, first.CompletedSteps);
        var (second, tail, resumedModel) = await CompositeTrainingRuns.RunAsync(fixture, CompositeTrainingRuns.Configuration(fixture, "split"), modelSeed: 99);
        Assert.Equal(20, second.StartStep);

        Assert.Equal(straight.Select(s => (s.Mse, s.Ce, s.GradNorm)), head.Concat(tail).Select(s => (s.Mse, s.Ce, s.GradNorm)));
        Assert.True(straight.Count(s => s.MseTokens > 0) > 10 && straight.Count(s => s.CeTokens > 0) > 10); // both losses exercised
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName })
        {
            Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "straight", CheckpointLayout.FolderName(40), file), TestContext.Current.CancellationToken),
                         await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "split", CheckpointLayout.FolderName(40), file), TestContext.Current.CancellationToken));
        }
        foreach (var ((name, a), (_, b)) in straightModel.named_parameters().Zip(resumedModel.named_parameters()))
            Assert.True(a.bytes.SequenceEqual(b.bytes), $"parameter {name} differs");
        straightModel.Dispose();
        resumedModel.Dispose();
    }
}
