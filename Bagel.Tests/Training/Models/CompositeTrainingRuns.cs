using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Models.Qwen2;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using Bagel.Training.Models;
using Bagel.Training.Options;
using TorchSharp;

namespace Bagel.Tests.Training.Models;

/// <summary>
/// Runs of the real BAGEL composite (tiny sizes, the Qwen2.5 vocabulary, the real VAE encode) on a
/// <see cref="LoopFixture"/>'s 2-worker pipeline, shared by the exact-resume tests.
/// </summary>
internal static class CompositeTrainingRuns
{
    /// <summary>torch's thread count for every run these tests compare bit for bit (in this process and in child processes).</summary>
    public const int ComparisonThreads = 2;

    private const int QwenVocabulary = 151_665; // the shared Qwen2.5 tokenizer's Count

    public static BagelConfig Config() => BagelTestModels.Config() with { LlmConfig = Qwen2Fixtures.Tiny() with { VocabSize = QwenVocabulary } };

    /// <summary>A 40-step configuration at lr 1e-3 with auto_resume, checkpointing into <paramref name="checkpoints"/> under the fixture.</summary>
    public static TrainingConfiguration Configuration(LoopFixture fixture, string checkpoints, int saveEvery = 1000)
    {
        TrainingConfiguration configuration = fixture.Configuration(checkpoints, totalSteps: 40, saveEvery: saveEvery, autoResume: true);
        configuration.Training.Lr = 1e-3;
        return configuration;
    }

    /// <summary>
    /// Trains a composite whose initial weights come from <paramref name="modelSeed"/> (a resumed run's initial weights
    /// are overwritten by the checkpoint, so any seed gives the same result) and returns the run, its step reports and
    /// the trained model (the caller disposes it).
    /// </summary>
    public static async Task<(TrainingRunResult Result, List<TrainingStepReport> Steps, BagelModel Model)> RunAsync(
        LoopFixture fixture, TrainingConfiguration configuration, long modelSeed, long? cancelAfterStep = null, Action<TrainingStepReport>? onStep = null)
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
            .UseCpuThreads(ComparisonThreads) // the same count in this process and in a child, whatever a pool thread was left with
            .OnStep(steps.Add)
            .OnStep(s => onStep?.Invoke(s))
            .OnStep(s => { if (s.Step == cancelAfterStep) stop.Cancel(); })
            .Build();
        TrainingRunResult result = await trainer.RunAsync(stop.Token);
        return (result, steps, model);
    }
}
