using Bagel.Core.Native;
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
}
