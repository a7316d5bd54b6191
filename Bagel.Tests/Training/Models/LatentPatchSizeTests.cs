using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Data.Packing;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Tests.Data.Packing;
using Bagel.Tests.Models.Bagel;
using Bagel.Training.Loop;
using Bagel.Training.Loss;
using Bagel.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Training.Models;

/// <summary>
/// <c>latent_patch_size</c> 1 end to end: the packer cuts VAE images at 8 pixels per token (FLUX's 8× × 1), the VAE
/// encodes them to latents of exactly the token grid, and the composite trains on 1×1-patch generation tokens.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class LatentPatchSizeTests
{
    [Fact]
    public void LatentPatchSizeOneTrainsOnEightPixelTokens()
    {
        var options = new PackingOptions { PixelsPerLatentToken = 8, MaxLatentSize = 8, TextCondDropoutProb = 0, VitCondDropoutProb = 0, VaeCondDropoutProb = 0 };
        var packer = new SequencePacker(options, BagelTestModels.Tokens);
        var builder = new PackedBatchBuilder { VaePixelsPerLatentToken = 8 };
        var owned = new List<Tensor>();
        torch.manual_seed(5);
        BagelConfig config = BagelTestModels.Config() with { LatentPatchSize = 1, MaxLatentSize = 8 };
        PackedBatch batch;
        using (PackableSample sample = new(SequencePackerTests.Index("t2i", 0), "t2i", [PlanItem.Text(true, false), PlanItem.NoisyVaeImage()],
                   [[5, 6, 7]], [torch.rand(3, 32, 48).mul(2).sub(1)], vaeStride: 8))
        {
            packer.Pack(builder, sample, new SeededRandomSource(1), new SeededRandomSource(2), owned);
            batch = builder.Build(limits: config.BatchLimits); // the builder borrows the image until here
        }
        owned.ForEach(t => t.Dispose());
        using var disposeBatch = batch;
        Assert.Equal(new LatentGrid(4, 6), batch.Vae!.LatentShapes[0]);

        using var model = new BagelModel(config);
        using (torch.no_grad()) model.Llm2Vae!.weight!.normal_(0, 0.1, new Generator(4));
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        var trainable = new BagelTrainingModel(model, vae, () => new BagelModel(config), new SeededRandomSource(3));
        using var scope = torch.NewDisposeScope();
        ModelLossOutputs outputs = trainable.Forward(batch);

        Assert.Equal(new long[] { 24, BagelTestModels.Vae.ZChannels }, outputs.MseSquaredError!.shape); // 4x6 tokens of 1x1x16
        StepLoss loss = TrainingLoss.Combine(outputs.CePerToken, outputs.CeTokenWeights, outputs.MseSquaredError, new LossWeights());
        Assert.True(float.IsFinite(loss.Total.item<float>()));
        loss.Total.backward();
        Assert.True(model.Vae2Llm!.weight!.grad!.abs().max().item<float>() > 0);
    }
}
