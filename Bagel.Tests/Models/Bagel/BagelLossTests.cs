using Bagel.Core.Batching;
using Bagel.Models.Bagel;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>The trainer's loss reduction (model.md §5), on hand-checkable per-token values.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class BagelLossTests
{
    // A VLM + T2I pack: 5 CE tokens (4 ids + eos) and 4 noisy latent tokens.
    private static PackedBatch Batch() => BagelTestModels.Pack(BagelTestModels.Vlm(), BagelTestModels.T2I(1));

    private static BagelForwardOutput Output(int ceTokens, int mseTokens)
    {
        Tensor ce = arange(1, ceTokens + 1, dtype: ScalarType.Float32);                                // 1, 2, …
        Tensor mse = arange(0, mseTokens * 4, dtype: ScalarType.Float32).reshape(mseTokens, 4);      // row means 1.5, 5.5, …
        return new BagelForwardOutput(mse, ce);
    }

    [Fact]
    public void SingleProcess_CeIsTokenMeanAndMseIsMeanOverChannelsThenTokens()
    {
        using PackedBatch batch = Batch();
        LossNormalizers counts = LossNormalizers.SingleProcess(batch);
        Assert.Equal(1, counts.WorldSize);
        Assert.Equal(5, counts.GlobalCeTokens);
        Assert.Equal(4, counts.GlobalMseTokens);
        using BagelForwardOutput output = Output(5, 4);
        using BagelLosses losses = BagelLoss.Reduce(output, batch, counts, new BagelLossOptions { CeWeight = 2.0, MseWeight = 0.5 });
        Assert.Equal(3.0f, losses.Ce.item<float>(), 5);                // (1+…+5)/5
        Assert.Equal(7.5f, losses.Mse.item<float>(), 5);               // (1.5+5.5+9.5+13.5)/4
        Assert.Equal(2.0f * 3.0f + 0.5f * 7.5f, losses.Total.item<float>(), 5);
    }

    [Fact]
    public void MultipleRanks_MultiplyByWorldSizeAndDivideByGlobalCounts()
    {
        using PackedBatch batch = Batch();
        using BagelForwardOutput output = Output(5, 4);
        using BagelLosses losses = BagelLoss.Reduce(output, batch, new LossNormalizers(4, 20, 10, 0));
        Assert.Equal(15f * 4 / 20, losses.Ce.item<float>(), 5);
        Assert.Equal(30f * 4 / 10, losses.Mse.item<float>(), 5);
    }

    [Fact]
    public void CeReweighting_UsesTheBatchWeightsAndTheGlobalWeightSum()
    {
        using PackedBatch batch = Batch();
        float[] weights = batch.TextLoss!.CeLossWeights.data<float>().ToArray();
        Assert.All(weights, w => Assert.Equal(1f / MathF.Sqrt(5), w, 6)); // one text item of 5 labelled tokens
        LossNormalizers counts = LossNormalizers.SingleProcess(batch);
        Assert.Equal(weights.Sum(), counts.GlobalCeWeightSum, 5);
        using BagelForwardOutput output = Output(5, 4);
        using BagelLosses losses = BagelLoss.Reduce(output, batch, counts, new BagelLossOptions { CeLossReweighting = true });
        double expected = Enumerable.Range(1, 5).Select((v, i) => v * weights[i]).Sum() / weights.Sum();
        Assert.Equal(expected, losses.Ce.item<float>(), 5);
    }

    [Fact]
    public void MissingLossesCountAsZero_AndAZeroCountWithTokensIsRejected()
    {
        using PackedBatch batch = Batch();
        using var empty = new BagelForwardOutput(null, null);
        using (BagelLosses losses = BagelLoss.Reduce(empty, batch, LossNormalizers.SingleProcess(batch)))
            Assert.Equal(0f, losses.Total.item<float>());
        using BagelForwardOutput output = Output(5, 4);
        var error = Assert.Throws<ArgumentException>(() => BagelLoss.Reduce(output, batch, new LossNormalizers(1, 0, 4, 0)));
        Assert.Contains("GlobalCeTokens", error.Message);
    }
}
