using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Batching;

/// <summary>
/// The understanding (ViT) fields of a packed batch (present only when the batch holds at least one ViT image).
/// P = total ViT patches. Owns its tensors.
/// </summary>
public sealed class VitImageFields : IDisposable
{
    /// <summary>Values per ViT patch vector: 14·14 pixels × 3 channels (the reference's patch layout, training.md §4.3).</summary>
    public const int PatchVectorSize = 14 * 14 * 3;

    /// <summary>Creates the group, taking ownership of the tensors.</summary>
    /// <param name="packedVitTokens"><c>packed_vit_tokens</c>.</param>
    /// <param name="packedVitPositionIds"><c>packed_vit_position_ids</c>.</param>
    /// <param name="packedVitTokenIndexes"><c>packed_vit_token_indexes</c>.</param>
    /// <param name="vitTokenSeqlens"><c>vit_token_seqlens</c>.</param>
    public VitImageFields(Tensor packedVitTokens, Tensor packedVitPositionIds, Tensor packedVitTokenIndexes, Tensor vitTokenSeqlens)
    {
        PackedVitTokens = packedVitTokens ?? throw new ArgumentNullException(nameof(packedVitTokens));
        PackedVitPositionIds = packedVitPositionIds ?? throw new ArgumentNullException(nameof(packedVitPositionIds));
        PackedVitTokenIndexes = packedVitTokenIndexes ?? throw new ArgumentNullException(nameof(packedVitTokenIndexes));
        VitTokenSeqlens = vitTokenSeqlens ?? throw new ArgumentNullException(nameof(vitTokenSeqlens));
    }

    /// <summary><c>packed_vit_tokens</c>: [P, 588] float32, normalized pixels per patch laid out (pixel row, pixel
    /// column, RGB channel), patches row-major per image. Stays fp32 under bf16 training; the model casts.</summary>
    public Tensor PackedVitTokens { get; }

    /// <summary><c>packed_vit_position_ids</c>: [P] int64, <c>row·70 + col</c> per patch (or the interpolated bucket).</summary>
    public Tensor PackedVitPositionIds { get; }

    /// <summary><c>packed_vit_token_indexes</c>: [P] int64, strictly ascending sequence positions of the ViT slots.</summary>
    public Tensor PackedVitTokenIndexes { get; }

    /// <summary><c>vit_token_seqlens</c>: [Nvit] int64, patches per ViT image in order (the model builds int32
    /// cumulative lengths from it for varlen attention).</summary>
    public Tensor VitTokenSeqlens { get; }

    /// <summary>Copies the group to <paramref name="device"/> (dtypes unchanged).</summary>
    /// <param name="device">The target device.</param>
    /// <param name="nonBlocking">Asynchronous copy (effective from pinned host memory to CUDA).</param>
    /// <returns>A new group owning the copies.</returns>
    public VitImageFields To(Device device, bool nonBlocking = false) => Map(t => t.to(device, non_blocking: nonBlocking));

    /// <summary>A new group whose tensors are <paramref name="map"/> of these (e.g. a copy to a device or into pinned memory).</summary>
    internal VitImageFields Map(Func<Tensor, Tensor> map) => new(map(PackedVitTokens), map(PackedVitPositionIds), map(PackedVitTokenIndexes), map(VitTokenSeqlens));

    /// <summary>The tensors, with their reference names.</summary>
    internal IEnumerable<(string Name, Tensor Tensor)> Tensors()
    {
        yield return ("packed_vit_tokens", PackedVitTokens);
        yield return ("packed_vit_position_ids", PackedVitPositionIds);
        yield return ("packed_vit_token_indexes", PackedVitTokenIndexes);
        yield return ("vit_token_seqlens", VitTokenSeqlens);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach ((_, Tensor tensor) in Tensors()) tensor.Dispose();
    }
}
