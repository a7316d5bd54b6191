using System.Runtime.CompilerServices;
using Bagel.Core.Batching;
using Bagel.Data.Packing;
using Bagel.Models.FluxVae;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using Bagel.Training.Models;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Options;

/// <summary>
/// <c>visual_gen</c> / <c>visual_und</c> at the loss level: a tiny BAGEL built with the parsed flags trains one step on
/// the data that branch setting is for (VLM-only without generation, T2I-only without understanding); the step's MSE
/// is logged as 0 without generation, and CE is absent without understanding (training.md 5.4). The recipes build
/// the full model from the flags; here only the branch switches are taken from them.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // the tiny BAGEL and the trainer seed torch's global generator
public sealed class SeedGuideBranchOptionEffectTests
{
    private static async IAsyncEnumerable<PackedBatch> Batches(Func<long, PackableSample> sample, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (long i = 0; ; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return BagelTestModels.Pack(sample(i), sample(i + 100));
            await Task.Yield();
        }
    }

    private static async Task<(TrainingStepReport Step, string LogLine)> TrainOneStepAsync(string[] args, Func<long, PackableSample> sample)
    {
        using var dir = new TempDirectory("bagel-branch-");
        TrainingConfiguration config = ReferenceCommandLine.Bind([.. args, "--total_steps", "1", "--warmup_steps", "0", "--log_every", "1", "--num_workers", "1",
            "--checkpoint_dir", Path.Combine(dir.Path, "checkpoints"), "--results_dir", dir.Path]);
        (bool gen, bool und) = (config.Training.VisualGen, config.Training.VisualUnd);
        using var model = BagelTestModels.Model(visualGen: gen, visualUnd: und);
        using FluxAutoEncoder? vae = gen ? new FluxAutoEncoder(BagelTestModels.Vae) : null;
        var trainable = new BagelTrainingModel(model, vae, () => BagelTestModels.Model(visualGen: gen, visualUnd: und, seed: 8));
        using var logs = new CollectingLoggerProvider();
        var steps = new List<TrainingStepReport>();
        using Trainer trainer = new TrainerBuilder().UseModel(trainable).UseData((_, ct) => Batches(sample, ct)).UseOptions(config)
            .UseLogger(logs).OnStep(steps.Add).Build();
        await trainer.RunAsync(TestContext.Current.CancellationToken);
        return (Assert.Single(steps), Assert.Single(logs.Messages, m => m.StartsWith("(step=", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task VisualGenOffTrainsUnderstandingOnlyAndLogsMseAsZero()
    {
        var (step, line) = await TrainOneStepAsync(["--visual_gen", "False"], BagelTestModels.Vlm);

        Assert.Equal((0L, 0.0), (step.MseTokens, step.Mse));
        Assert.True(step.CeTokens > 0 && step.Ce > 0, $"ce {step.Ce} over {step.CeTokens} tokens");
        Assert.Contains("Train Loss mse: 0.0000,", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VisualUndOffTrainsGenerationOnlyWithoutCe()
    {
        var (step, line) = await TrainOneStepAsync(["--visual_und", "False"], BagelTestModels.T2I);

        Assert.Equal((0L, 0.0), (step.CeTokens, step.Ce));
        Assert.True(step.MseTokens > 0 && step.Mse > 0, $"mse {step.Mse} over {step.MseTokens} tokens");
        Assert.Contains("Train Loss ce: 0.0000,", line, StringComparison.Ordinal);
    }

    [Fact]
    public void VisualGenAndVisualUndBothOffIsRefusedByTheBuilder()
    {
        TrainingConfiguration config = ReferenceCommandLine.Bind(["--visual_gen", "no", "--visual_und", "no"]);
        var error = Assert.Throws<InvalidTrainingOptionsException>(() => new TrainerBuilder().UseOptions(config).Build());
        Assert.Contains(error.Failures, f => f.Contains("'visual_gen' and 'visual_und' are both false", StringComparison.Ordinal));
    }
}
