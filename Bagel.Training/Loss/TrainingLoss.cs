using TorchSharp;

namespace Bagel.Training.Loss;

/// <summary>
/// The reference's loss normalisation for one process (training.md 5.4, world size 1): CE is the token mean of the
/// per-token cross-entropy (or, with reweighting, <c>Σ w·ce / Σ w</c>); MSE is the per-token mean over the latent
/// channels, then the mean over noisy latent tokens; the total is <c>(ce_weight·CE + mse_weight·MSE) / grad_accum</c>.
/// Like the reference, zero counted tokens give NaN (the non-finite guard then skips the step).
/// </summary>
public static class TrainingLoss
{
    /// <summary>Combines per-token losses from the model.</summary>
    /// <param name="cePerToken">Unreduced CE per labelled token [N_ce], or null when <c>visual_und</c> is off.</param>
    /// <param name="ceTokenWeights">Per-token CE weights [N_ce], needed with <see cref="LossWeights.CeLossReweighting"/>.</param>
    /// <param name="mseSquaredError">Squared error per noisy latent token and channel [N_mse, C], or null when <c>visual_gen</c> is off.</param>
    /// <param name="weights">Loss weights and accumulation.</param>
    /// <exception cref="ArgumentException">Both losses are null, or reweighting lacks its weights.</exception>
    public static StepLoss Combine(torch.Tensor? cePerToken, torch.Tensor? ceTokenWeights, torch.Tensor? mseSquaredError, LossWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (cePerToken is null && mseSquaredError is null)
            throw new ArgumentException("Neither a CE nor an MSE loss was given; at least one of visual_und / visual_gen must be on.");
        torch.Tensor total = torch.zeros([]);
        torch.Tensor ce = torch.zeros([]), mse = torch.zeros([]);
        long ceTokens = 0, mseTokens = 0;
        if (cePerToken is not null)
        {
            ceTokens = cePerToken.shape[0];
            torch.Tensor ceLoss;
            if (weights.CeLossReweighting)
            {
                if (ceTokenWeights is null)
                    throw new ArgumentException("ce_loss_reweighting is on but no per-token CE weights were given.", nameof(ceTokenWeights));
                ceLoss = (cePerToken * ceTokenWeights).sum() / ceTokenWeights.sum();
            }
            else ceLoss = cePerToken.sum() / (double)ceTokens;
            ce = ceLoss.detach();
            total = total + ceLoss * weights.CeWeight;
        }
        if (mseSquaredError is not null)
        {
            mseTokens = mseSquaredError.shape[0];
            torch.Tensor mseLoss = mseSquaredError.mean([-1]).sum() / (double)mseTokens;
            mse = mseLoss.detach();
            total = total + mseLoss * weights.MseWeight;
        }
        return new StepLoss(total / (double)weights.GradientAccumulationSteps, ce, mse, ceTokens, mseTokens);
    }
}
