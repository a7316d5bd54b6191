using Bagel.Core.Batching;

namespace Bagel.Models.Bagel;

/// <summary>
/// The all-reduced denominators of the loss reduction (model.md §5): a rank's loss sums are multiplied by the world
/// size W and divided by global counts, so that averaging gradients over ranks gives a global token mean.
/// </summary>
/// <param name="WorldSize">W, the number of data-parallel ranks (1 in a single process).</param>
/// <param name="GlobalCeTokens">Σ over ranks of the CE token counts (<c>len(ce_loss_indexes)</c>).</param>
/// <param name="GlobalMseTokens">Σ over ranks of the MSE token counts (<c>len(mse_loss_indexes)</c>).</param>
/// <param name="GlobalCeWeightSum">Σ over ranks of <c>ce_loss_weights</c> (used only with reweighting).</param>
public readonly record struct LossNormalizers(int WorldSize, long GlobalCeTokens, long GlobalMseTokens, double GlobalCeWeightSum)
{
    /// <summary>The normalizers of a single process (W = 1): the batch's own counts.</summary>
    /// <param name="batch">The batch.</param>
    /// <returns>The normalizers.</returns>
    public static LossNormalizers SingleProcess(PackedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        double weightSum = batch.TextLoss is { } loss ? loss.CeLossWeights.to(TorchSharp.torch.ScalarType.Float64).sum().item<double>() : 0.0;
        return new LossNormalizers(1, batch.TextLoss?.CeLossIndexes.shape[0] ?? 0, batch.Vae?.MseLossIndexes.shape[0] ?? 0, weightSum);
    }
}
