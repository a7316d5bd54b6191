using Bagel.Core.Batching;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// The trainer's loss reduction (train/pretrain_unified_navit.py, model.md §5): CE = Σ ce·W / N_ce (or, with
/// reweighting, Σ ce·w·W / Σw), MSE = Σ_tokens mean_channels(err²)·W / N_mse, total = ce_weight·CE + mse_weight·MSE.
/// A term that is absent (null) is 0; a present term with tokens needs a positive global count (the reference would
/// divide by zero); an empty term over a zero global count is 0/0 = NaN, as in the reference. Division by gradient
/// accumulation steps is left to the trainer (<c>Bagel.Training.Loss.TrainingLoss.Combine</c> reduces through here).
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
        Tensor? weights = null;
        if (options.CeLossReweighting && output.Ce is { } perTokenCe && perTokenCe.shape[0] > 0)
            weights = batch.TextLoss?.CeLossWeights
                ?? throw new ArgumentException("CE reweighting needs the batch's ce_loss_weights, but the batch has no CE group.", nameof(batch));
        return Reduce(output.Ce, weights, output.Mse, normalizers, options, batch.Device);
    }

    /// <summary>Reduces per-token losses given as tensors (the form a custom model or the trainer has them in).</summary>
    /// <param name="cePerToken">Unreduced CE per labelled token [N_ce], or null when there is no CE term.</param>
    /// <param name="ceTokenWeights">Per-token CE weights [N_ce]; needed when <see cref="BagelLossOptions.CeLossReweighting"/>
    /// is on and <paramref name="cePerToken"/> is not empty.</param>
    /// <param name="mseSquaredError">Squared error per noisy latent token and channel [N_mse, C], or null when there is
    /// no MSE term.</param>
    /// <param name="normalizers">The global counts (and the global CE weight sum when reweighting).</param>
    /// <param name="options">Weights and reweighting; null uses the defaults.</param>
    /// <returns>The reduced losses (with autograd history); the caller owns them.</returns>
    /// <exception cref="ArgumentException">The world size is not positive, a loss has tokens but a zero global count, or
    /// reweighting lacks its weights.</exception>
    public static BagelLosses Reduce(Tensor? cePerToken, Tensor? ceTokenWeights, Tensor? mseSquaredError, LossNormalizers normalizers, BagelLossOptions? options = null) =>
        Reduce(cePerToken, ceTokenWeights, mseSquaredError, normalizers, options ?? new BagelLossOptions(), (cePerToken ?? mseSquaredError)?.device ?? CPU);

    private static BagelLosses Reduce(Tensor? cePerToken, Tensor? ceTokenWeights, Tensor? mseSquaredError, LossNormalizers normalizers, BagelLossOptions options, Device device)
    {
        if (normalizers.WorldSize <= 0)
            throw new ArgumentException($"World size must be positive; got {normalizers.WorldSize}.", nameof(normalizers));
        using var scope = NewDisposeScope();
        double world = normalizers.WorldSize;

        Tensor ce = zeros([], ScalarType.Float32, device);
        if (cePerToken is not null)
        {
            bool hasTokens = cePerToken.shape[0] > 0;
            if (options.CeLossReweighting)
            {
                if (hasTokens && ceTokenWeights is null)
                    throw new ArgumentException("ce_loss_reweighting is on but no per-token CE weights were given.", nameof(ceTokenWeights));
                if (hasTokens) RequirePositive(normalizers.GlobalCeWeightSum, "GlobalCeWeightSum");
                Tensor weighted = ceTokenWeights is null ? cePerToken : cePerToken.mul(ceTokenWeights.to(ScalarType.Float32, cePerToken.device));
                ce = weighted.sum().mul(world).div(normalizers.GlobalCeWeightSum);
            }
            else
            {
                if (hasTokens) RequirePositive(normalizers.GlobalCeTokens, "GlobalCeTokens");
                ce = cePerToken.sum().mul(world).div(normalizers.GlobalCeTokens);
            }
        }

        Tensor mse = zeros([], ScalarType.Float32, device);
        if (mseSquaredError is not null)
        {
            if (mseSquaredError.shape[0] > 0) RequirePositive(normalizers.GlobalMseTokens, "GlobalMseTokens");
            mse = mseSquaredError.mean([-1]).sum().mul(world).div(normalizers.GlobalMseTokens);
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
