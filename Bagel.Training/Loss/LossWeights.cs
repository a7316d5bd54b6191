using Bagel.Training.Options;

namespace Bagel.Training.Loss;

/// <summary>How the two losses combine into the one that backward sees (training.md 5.4).</summary>
/// <param name="CeWeight">Weight of CE (reference <c>ce_weight</c>, default 1.0).</param>
/// <param name="MseWeight">Weight of MSE (reference <c>mse_weight</c>, default 1.0).</param>
/// <param name="CeLossReweighting">Weight CE tokens by per-token loss weights (reference <c>ce_loss_reweighting</c>, default false).</param>
/// <param name="GradientAccumulationSteps">Micro-batches per step; the loss is divided by it (default 1).</param>
public sealed record LossWeights(double CeWeight = 1.0, double MseWeight = 1.0, bool CeLossReweighting = false, int GradientAccumulationSteps = 1)
{
    /// <summary>The weights the training flags give.</summary>
    public static LossWeights FromOptions(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new LossWeights(options.CeWeight, options.MseWeight, options.CeLossReweighting, options.GradientAccumulationSteps);
    }
}
