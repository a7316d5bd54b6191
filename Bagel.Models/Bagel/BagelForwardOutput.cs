using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// The reference's <c>{mse, ce}</c>: unreduced per-token losses of one packed batch (model.md §1.2 steps 7-8). Owns
/// its tensors; reduce them with <see cref="BagelLoss.Reduce(BagelForwardOutput, Core.Batching.PackedBatch, LossNormalizers, BagelLossOptions?)"/>.
/// </summary>
/// <param name="Mse">[Nm, p²·z] float32 squared velocity errors at the noisy latent tokens, or null when the batch
/// has no VAE image (or the model no generation branch).</param>
/// <param name="Ce">[Nc] float32 per-token cross-entropy at <c>ce_loss_indexes</c>, or null when the batch has no CE label.</param>
public sealed record BagelForwardOutput(Tensor? Mse, Tensor? Ce) : IDisposable
{
    private readonly List<IDisposable> _retained = [];

    /// <summary>Takes ownership of tensors the backward pass still needs (activation checkpointing's inputs).</summary>
    /// <param name="disposables">The tensors; disposed with this output.</param>
    internal void Retain(IEnumerable<IDisposable> disposables) => _retained.AddRange(disposables);

    /// <inheritdoc />
    public void Dispose()
    {
        Mse?.Dispose();
        Ce?.Dispose();
        foreach (IDisposable retained in _retained) retained.Dispose();
        _retained.Clear();
    }
}
