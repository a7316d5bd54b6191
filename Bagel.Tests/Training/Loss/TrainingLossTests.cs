using Bagel.Core.Native;
using Bagel.Models.Bagel;
using Bagel.Training.Loss;
using Bagel.Training.Options;
using TorchSharp;

namespace Bagel.Tests.Training.Loss;

public sealed class TrainingLossTests
{
    public TrainingLossTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void CeIsTheTokenMeanMseTheChannelThenTokenMeanAndTheTotalIsWeightedOverAccumulation()
    {
        using var scope = torch.NewDisposeScope();
        torch.Tensor ce = torch.tensor(new[] { 1f, 2f, 6f });                          // mean 3
        torch.Tensor sq = torch.tensor(new[] { 1f, 3f, 2f, 6f }).reshape(2, 2);        // channel means 2 and 4 -> 3
        sq.requires_grad = true;

        StepLoss loss = TrainingLoss.Combine(ce, null, sq, new LossWeights(CeWeight: 0.5, MseWeight: 2.0, GradientAccumulationSteps: 2));

        Assert.Equal(3f, loss.Ce.item<float>());
        Assert.Equal(3f, loss.Mse.item<float>());
        Assert.Equal((0.5f * 3 + 2f * 3) / 2, loss.Total.item<float>());
        Assert.Equal((3L, 2L), (loss.CeTokens, loss.MseTokens));
        loss.Total.backward();
        Assert.Equal(2.0f / 2 / 2 / 2, sq.grad!.data<float>()[0]); // d/dx of mse_weight * mean / accum
    }

    [Fact]
    public void ReweightedCeIsTheWeightedMean()
    {
        using var scope = torch.NewDisposeScope();
        StepLoss loss = TrainingLoss.Combine(torch.tensor(new[] { 1f, 3f }), torch.tensor(new[] { 3f, 1f }), null, new LossWeights(CeLossReweighting: true));

        Assert.Equal((1f * 3 + 3f * 1) / 4, loss.Ce.item<float>());
        Assert.Equal(0f, loss.Mse.item<float>()); // visual_gen off: logged as 0
    }

    [Fact]
    public void ZeroTokensGiveNaNAsTheReferenceAndNoLossAtAllIsRefused()
    {
        using var scope = torch.NewDisposeScope();
        StepLoss loss = TrainingLoss.Combine(torch.zeros(0), null, null, new LossWeights());

        Assert.True(float.IsNaN(loss.Total.item<float>()));
        Assert.Throws<ArgumentException>(() => TrainingLoss.Combine(null, null, null, LossWeights.FromOptions(new TrainingOptions())));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CombineIsBagelLossReduceWithTheMicroBatchsOwnCountsDividedByAccumulation(bool reweighting)
    {
        using var scope = torch.NewDisposeScope();
        torch.Tensor ce = torch.tensor(new[] { 0.5f, 1.75f, 3.1f });
        torch.Tensor w = torch.tensor(new[] { 0.3f, 0.3f, 1f });
        torch.Tensor sq = torch.tensor(new[] { 1f, 3f, 2f, 6.5f, 0.2f, 0.1f }).reshape(3, 2);
        var weights = new LossWeights(CeWeight: 0.7, MseWeight: 1.3, CeLossReweighting: reweighting, GradientAccumulationSteps: 4);

        StepLoss combined = TrainingLoss.Combine(ce, w, sq, weights);
        var normalizers = new LossNormalizers(1, 3, 3, w.sum().item<float>());
        using BagelLosses reduced = BagelLoss.Reduce(ce, w, sq, normalizers, new BagelLossOptions { CeWeight = 0.7, MseWeight = 1.3, CeLossReweighting = reweighting });

        Assert.Equal(reduced.Ce.item<float>(), combined.Ce.item<float>());
        Assert.Equal(reduced.Mse.item<float>(), combined.Mse.item<float>());
        Assert.Equal(reduced.Total.item<float>() / 4, combined.Total.item<float>());
    }
}
