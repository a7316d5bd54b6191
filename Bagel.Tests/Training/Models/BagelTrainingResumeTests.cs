using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Models.Qwen2;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Models;
using Bagel.Training.Options;
using TorchSharp;

namespace Bagel.Tests.Training.Models;

/// <summary>Exact resume with the real BAGEL composite, the real VAE encode and a 2-worker data pipeline.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class BagelTrainingResumeTests
{
    private const int QwenVocabulary = 151_665; // the shared Qwen2.5 tokenizer's Count

    private static BagelConfig Config() => BagelTestModels.Config() with { LlmConfig = Qwen2Fixtures.Tiny() with { VocabSize = QwenVocabulary } };

    private static async Task<(TrainingRunResult Result, List<TrainingStepReport> Steps, BagelModel Model)> RunAsync(
        LoopFixture fixture, TrainingConfiguration configuration, long modelSeed, long? cancelAfterStep = null)
    {
        torch.manual_seed(modelSeed);
        var model = new BagelModel(Config());
        torch.manual_seed(5); // the frozen VAE is not checkpointed: it is the same file in real runs
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        var steps = new List<TrainingStepReport>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        using Trainer trainer = new TrainerBuilder()
            .UseModel(new BagelTrainingModel(model, vae, () => new BagelModel(Config())))
            .UseData(await fixture.PipelineAsync())
            .UseOptions(configuration)
            .OnStep(steps.Add)
            .OnStep(s => { if (s.Step == cancelAfterStep) stop.Cancel(); })
            .Build();
        TrainingRunResult result = await trainer.RunAsync(stop.Token);
        return (result, steps, model);
    }

    [Fact]
    public async Task StoppingAndResumingTheCompositeIsBitIdenticalToOneRun()
    {
        using var fixture = new LoopFixture();
        TrainingConfiguration Configuration(string run)
        {
            TrainingConfiguration configuration = fixture.Configuration(run, totalSteps: 40, autoResume: true);
            configuration.Training.Lr = 1e-3;
            return configuration;
        }

        var (_, straight, straightModel) = await RunAsync(fixture, Configuration("straight"), modelSeed: 1);
        var (first, head, firstModel) = await RunAsync(fixture, Configuration("split"), modelSeed: 1, cancelAfterStep: 19);
        firstModel.Dispose();
        Assert.True(first.Cancelled);
        Assert.Equal(20, first.CompletedSteps);
        var (second, tail, resumedModel) = await RunAsync(fixture, Configuration("split"), modelSeed: 99);
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
