using System.Runtime.CompilerServices;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Data.Packing;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Tests.Data.Packing;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Models.Qwen2;
using Bagel.Tests.Training.Models;
using Bagel.Training.Loop;
using Bagel.Training.Models;
using Bagel.Training.Options;
using TorchSharp;
using Xunit;

namespace Bagel.Tests.Models.Generation;

/// <summary>
/// VLM overfit: a tiny BAGEL trained briefly on two image/question/answer samples (the reference's VLM layout: ViT
/// image, the question without loss, the answer with loss) answers each question about its image with exactly the
/// trained answer under greedy decoding, and stops at eos; before training it does not.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))]
public sealed class VlmOverfitTests
{
    /// <summary>Training steps used (each step sees both samples).</summary>
    private const int Steps = 120;

    private static readonly int[][] Questions = [[5, 6, 7], [8, 9, 5]];
    private static readonly int[][] Answers = [[20, 21, 22, 23], [24, 25, 26]];

    private static async IAsyncEnumerable<PackedBatch> SameSamples(torch.Tensor[] images, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return BagelTestModels.Pack(
                [.. Enumerable.Range(0, images.Length).Select(i => new PackableSample(SequencePackerTests.Index("vlm", i), $"vlm {i}",
                    [PlanItem.VitImage(false), PlanItem.Text(false, loss: false), PlanItem.Text(false, loss: true)],
                    [Questions[i], Answers[i]], [images[i].clone()]))]);
            await Task.Yield();
        }
    }

    private static List<IReadOnlyList<int>> AskAll(BagelGenerator generator, torch.Tensor[] images) =>
        [.. images.Select((image, i) => generator.Understand(
            [new InterleaveInput.Image(new ContextImage(null, image)), new InterleaveInput.Text(Questions[i])],
            new TextGenerationOptions { MaxLength = 10 }, cancellationToken: TestContext.Current.CancellationToken))];

    [Fact]
    public async Task AfterOverfitting_AskReturnsTheTrainedAnswerExactly()
    {
        using var dir = new TempDirectory("bagel-vlm-overfit-");
        TrainingConfiguration config = ShortRuns.Configuration(dir.Path, totalSteps: Steps, lr: 3e-3);
        torch.manual_seed(3);
        torch.Tensor[] images = [torch.rand(3, 28, 28) * 2 - 1, torch.rand(3, 28, 42) * 2 - 1];
        BagelConfig Config() => BagelTestModels.Config() with { LlmConfig = Qwen2Fixtures.Tiny() with { HiddenSize = 64, IntermediateSize = 128 } };
        torch.manual_seed(7);
        using var model = new BagelModel(Config());
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        var tokens = BagelTestModels.Tokens;
        var generator = new BagelGenerator(model, vae, null, new GenerationTokenIds(tokens.BosTokenId, tokens.EosTokenId, tokens.StartOfImage, tokens.EndOfImage));
        model.eval();
        List<IReadOnlyList<int>> before = AskAll(generator, images);

        var steps = new List<TrainingStepReport>();
        using (Trainer trainer = new TrainerBuilder()
            .UseModel(new BagelTrainingModel(model, vae, () => new BagelModel(Config())))
            .UseData((_, ct) => SameSamples(images, ct), () => new RankDataStatus { Rank = 0 })
            .UseOptions(config)
            .OnStep(steps.Add)
            .Build())
        {
            await trainer.RunAsync(TestContext.Current.CancellationToken);
        }
        model.eval();
        List<IReadOnlyList<int>> after = AskAll(generator, images);
        TestContext.Current.SendDiagnosticMessage(
            $"VLM overfit, {Steps} steps: ce {steps[0].Ce:F4} -> {steps[^1].Ce:F4}; before [{string.Join(" | ", before.Select(a => string.Join(",", a)))}], after [{string.Join(" | ", after.Select(a => string.Join(",", a)))}]");
        for (int i = 0; i < images.Length; i++)
        {
            Assert.NotEqual(Answers[i], before[i]);
            Assert.Equal(Answers[i], after[i]);
        }
        foreach (var image in images) image.Dispose();
    }
}
