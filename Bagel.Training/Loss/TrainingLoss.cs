using Bagel.Models.Bagel;
using TorchSharp;

namespace Bagel.Training.Loss;

/// <summary>
/// The reference's loss normalisation for one process (training.md 5.4, world size 1): CE is the token mean of the
/// per-token cross-entropy (or, with reweighting, <c>Σ w·ce / Σ w</c>); MSE is the per-token mean over the latent
/// channels, then the mean over noisy latent tokens; the total is <c>(ce_weight·CE + mse_weight·MSE) / grad_accum</c>.
/// Like the reference, zero counted tokens give NaN (the non-finite guard then skips the step). The reduction itself
/// is <see cref="BagelLoss.Reduce(torch.Tensor?, torch.Tensor?, torch.Tensor?, LossNormalizers, BagelLossOptions?)"/>
/// with this micro-batch's own counts; this adds the accumulation and the token counts.
/// </summary>
public static class TrainingLoss
{
    /// <summary>Combines per-token losses from the model.</summary>
    /// <param name="cePerToken">Unreduced CE per labelled token [N_ce], or null when <c>visual_und</c> is off.</param>
    /// <param name="ceTokenWeights">Per-token CE weights [N_ce], needed with <see cref="LossWeights.CeLossReweighting"/>.</param>
    /// <param name="mseSquaredError">Squared error per noisy latent token and channel [N_mse, C], or null when <c>visual_gen</c> is off.</param>
    /// <param name="weights">Loss weights and accumulation.</param>
    /// <exception cref="ArgumentException">Both losses are null, or reweighting lacks its weights.</exception>
    public static StepLoss Combine(torch.Tensor? cePerToken, torch.Tensor? ceTokenWeights, torch.Tensor? mseSquaredError, LossWeights weights) =>
        Combine(cePerToken, ceTokenWeights, mseSquaredError, weights, static (ce, mse, weightSum) => new LossNormalizers(1, ce, mse, weightSum));

    /// <summary>
    /// As the other overload, with the denominators from <paramref name="normalize"/>, which receives this micro-batch's
    /// CE tokens, MSE tokens and CE weight sum: data-parallel training passes
    /// <c>DataParallel.GlobalNormalizers</c>, which all-reduces them over the ranks before backward as the reference does.
    /// The returned token counts stay this rank's.
    /// </summary>
    /// <param name="cePerToken">Unreduced CE per labelled token [N_ce], or null when <c>visual_und</c> is off.</param>
    /// <param name="ceTokenWeights">Per-token CE weights [N_ce], needed with <see cref="LossWeights.CeLossReweighting"/>.</param>
    /// <param name="mseSquaredError">Squared error per noisy latent token and channel [N_mse, C], or null when <c>visual_gen</c> is off.</param>
    /// <param name="weights">Loss weights and accumulation.</param>
    /// <param name="normalize">The denominators (world size and global counts) from this rank's counts.</param>
    /// <exception cref="ArgumentException">Both losses are null, or reweighting lacks its weights.</exception>
    public static StepLoss Combine(torch.Tensor? cePerToken, torch.Tensor? ceTokenWeights, torch.Tensor? mseSquaredError, LossWeights weights,
        Func<long, long, double, LossNormalizers> normalize)
    {
        ArgumentNullException.ThrowIfNull(normalize);
        ArgumentNullException.ThrowIfNull(weights);
        if (cePerToken is null && mseSquaredError is null)
            throw new ArgumentException("Neither a CE nor an MSE loss was given; at least one of visual_und / visual_gen must be on.");
        if (weights.CeLossReweighting && cePerToken is not null && ceTokenWeights is null)
            throw new ArgumentException("ce_loss_reweighting is on but no per-token CE weights were given.", nameof(ceTokenWeights));
        long ceTokens = cePerToken?.shape[0] ?? 0, mseTokens = mseSquaredError?.shape[0] ?? 0;
        // The weight sum in float32, as the reference sums the weight tensor (exact through double and back).
        double weightSum = weights.CeLossReweighting && ceTokenWeights is not null
            ? ceTokenWeights.to(torch.ScalarType.Float32).sum().item<float>()
            : 0.0;
        var options = new BagelLossOptions { CeWeight = weights.CeWeight, MseWeight = weights.MseWeight, CeLossReweighting = weights.CeLossReweighting };
        BagelLosses losses = BagelLoss.Reduce(cePerToken, ceTokenWeights, mseSquaredError, normalize(ceTokens, mseTokens, weightSum), options);
        try
        {
            return new StepLoss(losses.Total.div((double)weights.GradientAccumulationSteps), losses.Ce.detach(), losses.Mse.detach(), ceTokens, mseTokens);
        }
        finally
        {
            losses.Dispose();
        }
    }
}
