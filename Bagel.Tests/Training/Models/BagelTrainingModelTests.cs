using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.SafeTensors;
using Bagel.Models.FluxVae;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Models.Bagel;
using Bagel.Training.Loop;
using Bagel.Training.Models;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Models;

[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class BagelTrainingModelTests
{
    [Fact]
    public async Task TheTrainerTrainsTheCompositeEndToEndAndSavesReferenceNames()
    {
        using var dir = new TempDirectory("bagel-glue-");
        TrainingConfiguration config = ShortRuns.Configuration(dir.Path, totalSteps: 12, lr: 3e-3);
        config.Training.Ema = 0.9;

        using var model = BagelTestModels.Model();
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        var trainable = new BagelTrainingModel(model, vae, () => BagelTestModels.Model(seed: 99));
        var steps = new List<TrainingStepReport>();
        using Trainer trainer = new TrainerBuilder()
            .UseModel(trainable)
            .UseData((_, ct) => BagelTestModels.EndlessMixedBatches(ct), () => new RankDataStatus { Rank = 0 })
            .UseOptions(config)
            .OnStep(steps.Add)
            .Build();

        TrainingRunResult result = await trainer.RunAsync(TestContext.Current.CancellationToken);

        Assert.Equal(12, result.CompletedSteps);
        Assert.All(steps, s => Assert.True(double.IsFinite(s.Ce) && double.IsFinite(s.Mse) && s.Ce > 0 && s.Mse > 0, $"step {s.Step}: ce {s.Ce}, mse {s.Mse}"));
        Assert.All(steps, s => Assert.True(s.CeTokens > 0 && s.MseTokens > 0));
        double firstCe = steps.Take(3).Average(s => s.Ce), lastCe = steps.TakeLast(3).Average(s => s.Ce);
        Assert.True(lastCe < firstCe, $"CE did not go down: {firstCe:F4} -> {lastCe:F4}");

        using var saved = SafeTensorsCheckpoint.Open(Path.Combine(result.LastCheckpoint, "model.safetensors"));
        string[] names = [.. saved.Tensors.Select(t => t.Name)];
        Assert.Contains("language_model.model.embed_tokens.weight", names);
        Assert.Contains("language_model.model.layers.0.self_attn.q_proj_moe_gen.weight", names);
        Assert.Contains("vae2llm.weight", names);
        Assert.Contains("vit_model.vision_model.embeddings.patch_embedding.weight", names);
        Assert.DoesNotContain(names, n => n.StartsWith("encoder.", StringComparison.Ordinal)); // the VAE is not part of the model file
    }
}
