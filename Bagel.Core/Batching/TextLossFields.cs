using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Batching;

/// <summary>
/// The cross-entropy fields of a packed batch (present only when at least one token carries a CE label).
/// C = labelled positions. Owns its tensors.
/// </summary>
public sealed class TextLossFields : IDisposable
{
    /// <summary>Creates the group, taking ownership of the tensors.</summary>
    /// <param name="packedLabelIds"><c>packed_label_ids</c>.</param>
    /// <param name="ceLossIndexes"><c>ce_loss_indexes</c>.</param>
    /// <param name="ceLossWeights"><c>ce_loss_weights</c>.</param>
    public TextLossFields(Tensor packedLabelIds, Tensor ceLossIndexes, Tensor ceLossWeights)
    {
        PackedLabelIds = packedLabelIds ?? throw new ArgumentNullException(nameof(packedLabelIds));
        CeLossIndexes = ceLossIndexes ?? throw new ArgumentNullException(nameof(ceLossIndexes));
        CeLossWeights = ceLossWeights ?? throw new ArgumentNullException(nameof(ceLossWeights));
    }

    /// <summary><c>packed_label_ids</c>: [C] int64, the next-token targets (already shifted by the packer; the model
    /// does no shift).</summary>
    public Tensor PackedLabelIds { get; }

    /// <summary><c>ce_loss_indexes</c>: [C] int64, strictly ascending positions whose hidden state predicts the label
    /// (indices, despite the reference docstring's "bool").</summary>
    public Tensor CeLossIndexes { get; }

    /// <summary><c>ce_loss_weights</c>: [C] float32, <c>len2weight</c> per labelled token (1/√(n+1) for the n+1
    /// labels of a text item under 'square'; 1.0 for special-token labels). Used only with <c>ce_loss_reweighting</c>.</summary>
    public Tensor CeLossWeights { get; }

    /// <summary>Copies the group to <paramref name="device"/> (dtypes unchanged).</summary>
    /// <param name="device">The target device.</param>
    /// <param name="nonBlocking">Asynchronous copy (effective from pinned host memory to CUDA).</param>
    /// <returns>A new group owning the copies.</returns>
    public TextLossFields To(Device device, bool nonBlocking = false) => Map(t => t.to(device, non_blocking: nonBlocking));

    /// <summary>A new group whose tensors are <paramref name="map"/> of these (e.g. a copy to a device or into pinned memory).</summary>
    internal TextLossFields Map(Func<Tensor, Tensor> map) => new(map(PackedLabelIds), map(CeLossIndexes), map(CeLossWeights));

    /// <summary>The tensors, with their reference names.</summary>
    internal IEnumerable<(string Name, Tensor Tensor)> Tensors()
    {
        yield return ("packed_label_ids", PackedLabelIds);
        yield return ("ce_loss_indexes", CeLossIndexes);
        yield return ("ce_loss_weights", CeLossWeights);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach ((_, Tensor tensor) in Tensors()) tensor.Dispose();
    }
}
