namespace Bagel.Models.Bagel;

/// <summary>How <see cref="BagelLoss.Reduce(BagelForwardOutput, Core.Batching.PackedBatch, LossNormalizers, BagelLossOptions?)"/> weighs the two losses (the reference's training arguments).</summary>
public sealed record BagelLossOptions
{
    /// <summary><c>ce_weight</c>: the CE term's factor in the total (default 1.0).</summary>
    public double CeWeight { get; init; } = 1.0;

    /// <summary><c>mse_weight</c>: the MSE term's factor in the total (default 1.0).</summary>
    public double MseWeight { get; init; } = 1.0;

    /// <summary><c>ce_loss_reweighting</c>: weight each CE token by its <c>ce_loss_weights</c> entry and normalize by the
    /// global weight sum instead of the global token count (default false).</summary>
    public bool CeLossReweighting { get; init; }
}
