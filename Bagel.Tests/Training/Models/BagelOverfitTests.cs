using System.Runtime.CompilerServices;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Data.Packing;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Tests.Models.Qwen2;
using Bagel.Tests.Data.Packing;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Models.Bagel;
using Bagel.Training.Loop;
using Bagel.Training.Models;
using Bagel.Training.Options;
using TorchSharp;

namespace Bagel.Tests.Training.Models;

/// <summary>A tiny BAGEL trained on the same 4 samples over and over must memorise them (issue 6's overfit check).</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))]
public sealed class BagelOverfitTests
{
    private static async IAsyncEnumerable<PackedBatch> SameFourSamples(torch.Tensor[] images, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return BagelTestModels.Pack(
                new PackableSample(SequencePackerTests.Index("t2i", 0), "t2i a", [PlanItem.Text(false, false), PlanItem.NoisyVaeImage()], [[5, 6, 7]], [images[0].clone()]),
                new PackableSample(SequencePackerTests.Index("t2i", 1), "t2i b", [PlanItem.Text(false, false), PlanItem.NoisyVaeImage()], [[8, 9]], [images[1].clone()]),
                new PackableSample(SequencePackerTests.Index("vlm", 0), "vlm a", [PlanItem.VitImage(false), PlanItem.Text(false, loss: true)], [[10, 11, 12, 13]], [images[2].clone()]),
                new PackableSample(SequencePackerTests.Index("vlm", 1), "vlm b", [PlanItem.VitImage(false), PlanItem.Text(false, loss: true)], [[14, 15, 16]], [images[3].clone()]));
            await Task.Yield();
        }
    }

    [Fact]
    public async Task FourSamplesAreMemorised()
    {
        using var dir = new TempDirectory("bagel-overfit-");
        TrainingConfiguration config = ShortRuns.Configuration(dir.Path, totalSteps: 300, lr: 3e-3);

        torch.manual_seed(3);
        torch.Tensor[] images = [torch.rand(3, 32, 32) * 2 - 1, torch.rand(3, 32, 48) * 2 - 1, torch.rand(3, 28, 28) * 2 - 1, torch.rand(3, 28, 42) * 2 - 1];
        // Hidden 128: the latent tokens are 64-wide, so a 16-wide stream could not carry the velocity target.
        BagelConfig Config() => BagelTestModels.Config() with { LlmConfig = Qwen2Fixtures.Tiny() with { HiddenSize = 128, IntermediateSize = 256 } };
        torch.manual_seed(7);
        using var model = new BagelModel(Config());
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        var steps = new List<TrainingStepReport>();
        using Trainer trainer = new TrainerBuilder()
            .UseModel(new BagelTrainingModel(model, vae, () => new BagelModel(Config())))
            .UseData((_, ct) => SameFourSamples(images, ct), () => new RankDataStatus { Rank = 0 })
            .UseOptions(config)
            .OnStep(steps.Add)
            .Build();
        await trainer.RunAsync(TestContext.Current.CancellationToken);

        double firstMse = steps.Take(5).Average(s => s.Mse), lastMse = steps.TakeLast(10).Average(s => s.Mse);
        double lastCe = steps.TakeLast(5).Average(s => s.Ce);
        TestContext.Current.SendDiagnosticMessage($"overfit: ce {steps[0].Ce:F4} -> {lastCe:F4}, mse {firstMse:F4} -> {lastMse:F4}");
        Assert.True(lastCe < 0.05, $"CE only reached {lastCe:F4} (started at {steps[0].Ce:F4})");
        Assert.True(lastMse < 0.5 * firstMse, $"MSE went {firstMse:F4} -> {lastMse:F4}");
        foreach (var image in images) image.Dispose();
    }
}
