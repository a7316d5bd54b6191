using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>The reduced losses of one batch (scalars, float32). Owns them.</summary>
/// <param name="Total"><c>ce_weight·CE + mse_weight·MSE</c>, the tensor to call backward on.</param>
/// <param name="Ce">The reduced CE (0 when the batch has no CE token).</param>
/// <param name="Mse">The reduced MSE (0 when the batch has no noisy latent token).</param>
public sealed record BagelLosses(Tensor Total, Tensor Ce, Tensor Mse) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        Total.Dispose();
        Ce.Dispose();
        Mse.Dispose();
    }
}
