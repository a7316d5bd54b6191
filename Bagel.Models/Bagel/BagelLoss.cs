using Bagel.Core.Batching;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// The trainer's loss reduction (train/pretrain_unified_navit.py, model.md §5): CE = Σ ce·W / N_ce (or, with
/// reweighting, Σ ce·w·W / Σw), MSE = Σ_tokens mean_channels(err²)·W / N_mse, total = ce_weight·CE + mse_weight·MSE.
/// A term whose global count is zero is 0 (the reference asserts instead). Division by gradient accumulation steps is
/// left to the trainer.
/// </summary>
public static class BagelLoss
{
    /// <summary>Reduces one batch's per-token losses.</summary>
    /// <param name="output">The forward's per-token losses.</param>
    /// <param name="batch">The batch (its <c>ce_loss_weights</c> are read when reweighting).</param>
    /// <param name="normalizers">The global counts; <see cref="LossNormalizers.SingleProcess"/> in one process.</param>
    /// <param name="options">Weights and reweighting; null uses the defaults.</param>
    /// <returns>The reduced losses; the caller owns them.</returns>
    /// <exception cref="ArgumentException">The world size is not positive, or a loss is present with a zero global count.</exception>
    public static BagelLosses Reduce(BagelForwardOutput output, PackedBatch batch, LossNormalizers normalizers, BagelLossOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(batch);
        options ??= new BagelLossOptions();
        if (normalizers.WorldSize <= 0)
            throw new ArgumentException($"World size must be positive; got {normalizers.WorldSize}.", nameof(normalizers));
        Device device = batch.Device;
        using var scope = NewDisposeScope();
        double world = normalizers.WorldSize;

        Tensor ce = zeros([], ScalarType.Float32, device);
        if (output.Ce is { } perTokenCe && perTokenCe.shape[0] > 0)
        {
            if (options.CeLossReweighting)
            {
                Tensor weights = batch.TextLoss?.CeLossWeights.to(ScalarType.Float32, perTokenCe.device)
                    ?? throw new ArgumentException("CE reweighting needs the batch's ce_loss_weights, but the batch has no CE group.", nameof(batch));
                RequirePositive(normalizers.GlobalCeWeightSum, "GlobalCeWeightSum");
                ce = perTokenCe.mul(weights).sum().mul(world).div(normalizers.GlobalCeWeightSum);
            }
            else
            {
                RequirePositive(normalizers.GlobalCeTokens, "GlobalCeTokens");
                ce = perTokenCe.sum().mul(world).div(normalizers.GlobalCeTokens);
            }
        }

        Tensor mse = zeros([], ScalarType.Float32, device);
        if (output.Mse is { } perElementMse && perElementMse.shape[0] > 0)
        {
            RequirePositive(normalizers.GlobalMseTokens, "GlobalMseTokens");
            mse = perElementMse.mean([-1]).sum().mul(world).div(normalizers.GlobalMseTokens);
        }

        Tensor total = ce.mul(options.CeWeight).add(mse.mul(options.MseWeight));
        return new BagelLosses(total.MoveToOuterDisposeScope(), ce.MoveToOuterDisposeScope(), mse.MoveToOuterDisposeScope());
    }

    private static void RequirePositive(double value, string name)
    {
        if (!(value > 0))
            throw new ArgumentException($"{name} is {value}, but this rank has tokens of that loss; pass the all-reduced count over every rank (at least this rank's own).", nameof(name));
    }
}
