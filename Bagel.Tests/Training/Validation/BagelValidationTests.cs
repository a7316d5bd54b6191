using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Models.FluxVae;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Training.Models;
using Bagel.Training.Loop;
using Bagel.Training.Loss;
using Bagel.Training.Models;
using Bagel.Training.Options;
using Bagel.Training.Validation;

namespace Bagel.Tests.Training.Validation;

/// <summary>Validation with the tiny BAGEL composite, whose VAE-posterior and flow-matching noise come from torch's global generator.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class BagelValidationTests
{
    private static ValidationSet HeldOut() => new(
    [
        new("t2i_pretrain", [BagelTestModels.Pack(BagelTestModels.T2I(100)), BagelTestModels.Pack(BagelTestModels.T2I(101), BagelTestModels.T2I(102))]),
        new("unified_edit", [BagelTestModels.Pack(BagelTestModels.Edit(100))]),
        new("vlm_sft", [BagelTestModels.Pack(BagelTestModels.Vlm(100), BagelTestModels.Vlm(101))]),
    ]);

    private static async Task<(List<TrainingStepReport> Steps, List<ValidationReport> Evaluations)> TrainAsync(
        BagelTrainingModel model, string folder, ValidationSet? set)
    {
        TrainingConfiguration config = ShortRuns.Configuration(folder, totalSteps: 4, lr: 3e-3);
        var steps = new List<TrainingStepReport>();
        var evaluations = new List<ValidationReport>();
        var builder = new TrainerBuilder().UseModel(model).UseData((_, ct) => BagelTestModels.EndlessMixedBatches(ct), () => new RankDataStatus { Rank = 0 }).UseOptions(config).OnStep(steps.Add);
        if (set is not null) builder.UseValidation(set, everySteps: 2).OnEval(evaluations.Add);
        using Trainer trainer = builder.Build();
        await trainer.RunAsync(TestContext.Current.CancellationToken);
        return (steps, evaluations);
    }

    [Fact]
    public async Task TheCompositeTrainsBitIdenticallyWithValidationAndItsEvaluationsRepeat()
    {
        using var dir = new TempDirectory("bagel-validation-");
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        using var plainModel = BagelTestModels.Model();
        var (plain, _) = await TrainAsync(new BagelTrainingModel(plainModel, vae, () => BagelTestModels.Model(seed: 99)), Path.Combine(dir.Path, "plain"), set: null);

        using ValidationSet set = HeldOut();
        using var validatedModel = BagelTestModels.Model();
        var trainable = new BagelTrainingModel(validatedModel, vae, () => BagelTestModels.Model(seed: 99));
        var (validated, evaluations) = await TrainAsync(trainable, Path.Combine(dir.Path, "validated"), set);

        Assert.Equal(plain.Select(s => (s.Mse, s.Ce, s.TotalLoss, s.GradNorm)), validated.Select(s => (s.Mse, s.Ce, s.TotalLoss, s.GradNorm)));
        Assert.Equal([2L, 4], evaluations.Select(e => e.Step));
        GroupValidationLoss t2i = evaluations[^1].Groups[0], vlm = evaluations[^1].Groups[2];
        Assert.True(t2i.HasMse && !t2i.HasCe && t2i.Mse > 0, $"t2i: {t2i}");
        Assert.True(vlm.HasCe && !vlm.HasMse && vlm.Ce > 0, $"vlm: {vlm}");
        // The end-of-run evaluation saw the final weights; evaluating them again (same seed: global_seed) repeats it exactly.
        IReadOnlyList<GroupValidationLoss> again = ValidationEvaluator.Evaluate(trainable, set, new LossWeights(), new TrainingOptions().GlobalSeed, TestContext.Current.CancellationToken);
        Assert.Equal(evaluations[^1].Groups, again);
    }
}
