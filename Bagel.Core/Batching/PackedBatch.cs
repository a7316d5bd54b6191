using Bagel.Core.DataStatus;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Batching;

/// <summary>
/// One packed training batch (the reference's <c>to_tensor()</c> output, training.md §4.5 / model.md §1.1): several
/// samples concatenated into one sequence of N = <see cref="SequenceLength"/> tokens, consumed by the model's
/// forward as a batch of size 1. Owns every tensor; dispose it when the step is done.
/// </summary>
/// <remarks>
/// <para><b>Optional groups.</b> The VAE, ViT and CE fields come in groups that are <c>null</c> when the batch has
/// none of them (not empty tensors): <see cref="Vae"/>, <see cref="Vit"/>, <see cref="TextLoss"/>. The reference omits
/// such keys and its forward then breaks; consumers here test the group for null and skip that path.</para>
/// <para><b>Attention.</b> The structure is kept per sample (<see cref="Samples"/>: lengths, splits, modes) instead
/// of dense masks; the flex-attention padding "sample" is not part of the contract (an attention backend that pads
/// adds it itself), so <see cref="SampleLens"/> holds real samples only.</para>
/// <para><b>Dtypes.</b> Index and id tensors are int64; pixel tensors, timesteps and CE weights are float32, also
/// under bf16 training (the model casts). <see cref="To"/> keeps every dtype.</para>
/// <para><b>Ranks.</b> A batch belongs to one rank (<see cref="Rank"/>); its <see cref="DataIndexes"/> feed that
/// rank's data status.</para>
/// </remarks>
public sealed class PackedBatch : IDisposable
{
    private bool _disposed;

    /// <summary>Creates a batch, taking ownership of every tensor (including the groups').</summary>
    /// <param name="samples">The sample layouts in sequence order.</param>
    /// <param name="packedTextIds"><c>packed_text_ids</c>.</param>
    /// <param name="packedTextIndexes"><c>packed_text_indexes</c>.</param>
    /// <param name="packedPositionIds"><c>packed_position_ids</c>.</param>
    /// <param name="vae">The VAE group, or null.</param>
    /// <param name="vit">The ViT group, or null.</param>
    /// <param name="textLoss">The CE group, or null.</param>
    /// <param name="dataIndexes">One data index per sample (<c>batch_data_indexes</c>).</param>
    /// <param name="rank">The rank the batch belongs to (default 0).</param>
    public PackedBatch(IReadOnlyList<SampleLayout> samples, Tensor packedTextIds, Tensor packedTextIndexes, Tensor packedPositionIds,
        VaeImageFields? vae, VitImageFields? vit, TextLossFields? textLoss, IReadOnlyList<SampleDataIndex> dataIndexes, int rank = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        Samples = samples ?? throw new ArgumentNullException(nameof(samples));
        PackedTextIds = packedTextIds ?? throw new ArgumentNullException(nameof(packedTextIds));
        PackedTextIndexes = packedTextIndexes ?? throw new ArgumentNullException(nameof(packedTextIndexes));
        PackedPositionIds = packedPositionIds ?? throw new ArgumentNullException(nameof(packedPositionIds));
        Vae = vae;
        Vit = vit;
        TextLoss = textLoss;
        DataIndexes = dataIndexes ?? throw new ArgumentNullException(nameof(dataIndexes));
        Rank = rank;
    }

    /// <summary>The rank this batch belongs to.</summary>
    public int Rank { get; }

    /// <summary>The samples in sequence order: each one's length and attention splits.</summary>
    public IReadOnlyList<SampleLayout> Samples { get; }

    /// <summary><c>sequence_length</c>: N, the number of real tokens (Σ <see cref="SampleLens"/>).</summary>
    public int SequenceLength => Samples.Sum(s => s.Length);

    /// <summary><c>sample_lens</c>: tokens per sample, without the reference's flex padding entry.</summary>
    public IReadOnlyList<int> SampleLens => [.. Samples.Select(s => s.Length)];

    /// <summary><c>split_lens</c>, flattened over samples in order (without the flex padding split).</summary>
    public IReadOnlyList<int> SplitLens => [.. Samples.SelectMany(s => s.Splits).Select(s => s.Length)];

    /// <summary><c>attn_modes</c>, flattened over samples in order, aligned with <see cref="SplitLens"/>.</summary>
    public IReadOnlyList<AttentionMode> AttnModes => [.. Samples.SelectMany(s => s.Splits).Select(s => s.Mode)];

    /// <summary><c>packed_text_ids</c>: [T] int64, the ids of every token-embedded position (text, bos/eos, vision
    /// start/end markers), in sequence order.</summary>
    public Tensor PackedTextIds { get; }

    /// <summary><c>packed_text_indexes</c>: [T] int64, strictly ascending positions (in 0..N−1) of those tokens.</summary>
    public Tensor PackedTextIndexes { get; }

    /// <summary><c>packed_position_ids</c>: [N] int64, RoPE position per token; restarts per sample and never
    /// decreases within one (an image split shares one id; a noisy image does not advance it).</summary>
    public Tensor PackedPositionIds { get; }

    /// <summary>The VAE (generation) fields, or null when the batch holds no VAE image.</summary>
    public VaeImageFields? Vae { get; }

    /// <summary>The ViT (understanding) fields, or null when the batch holds no ViT image.</summary>
    public VitImageFields? Vit { get; }

    /// <summary>The cross-entropy fields, or null when no token carries a CE label.</summary>
    public TextLossFields? TextLoss { get; }

    /// <summary><c>batch_data_indexes</c>: one source index per sample, in sample order, for the data status. Not
    /// passed to the model.</summary>
    public IReadOnlyList<SampleDataIndex> DataIndexes { get; }

    /// <summary>The device of the tensors.</summary>
    public Device Device => PackedPositionIds.device;

    /// <summary>Σ sample_len², the attention term of the reference's FLOPs estimate (without the flex padding entry).</summary>
    public long SumOfSquaredSampleLengths => Samples.Sum(s => (long)s.Length * s.Length);

    /// <summary>
    /// Copies the batch to <paramref name="device"/>: a new batch owning the copies (this one stays valid and still
    /// needs disposing). Every dtype is kept; index tensors stay int64.
    /// </summary>
    /// <param name="device">The target device.</param>
    /// <param name="nonBlocking">Request asynchronous copies; they overlap with compute only from pinned host memory
    /// to CUDA, and are ordinary copies otherwise. Default false.</param>
    /// <returns>The copy.</returns>
    public PackedBatch To(Device device, bool nonBlocking = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        return Map(t => t.to(device, non_blocking: nonBlocking));
    }

    /// <summary>
    /// Copies the batch into page-locked (pinned) host memory, from which a copy to CUDA can run asynchronously (the
    /// reference's DataLoader <c>pin_memory=True</c>). Needs a CUDA-enabled libtorch (pinned memory is a CUDA host
    /// allocation); on a CPU-only backend libtorch throws.
    /// </summary>
    /// <returns>A new batch owning the pinned copies (this one stays valid and still needs disposing).</returns>
    public PackedBatch PinMemory() => Map(t => t.pin_memory());

    /// <summary>
    /// The batch on <paramref name="device"/> for training: on CUDA each tensor goes through pinned memory with one
    /// non-blocking copy, so the transfer overlaps with the GPU's queued work instead of stalling the host.
    /// </summary>
    /// <param name="device">The compute device.</param>
    /// <returns>The copy on <paramref name="device"/>; on the CPU a plain <see cref="To"/> copy.</returns>
    public PackedBatch ToDeviceForTraining(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.type != DeviceType.CUDA) return To(device);
        // The caching host allocator records the copy's event on each pinned block, so disposing the pinned batch
        // right after enqueuing the copies is safe: the blocks are reused only after the copies finish.
        using PackedBatch pinned = PinMemory();
        return pinned.To(device, nonBlocking: true);
    }

    private PackedBatch Map(Func<Tensor, Tensor> map)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var owned = new List<IDisposable>();
        try
        {
            Tensor textIds = Track(owned, map(PackedTextIds));
            Tensor textIndexes = Track(owned, map(PackedTextIndexes));
            Tensor positionIds = Track(owned, map(PackedPositionIds));
            VaeImageFields? vae = Vae is null ? null : Track(owned, Vae.Map(map));
            VitImageFields? vit = Vit is null ? null : Track(owned, Vit.Map(map));
            TextLossFields? textLoss = TextLoss is null ? null : Track(owned, TextLoss.Map(map));
            return new PackedBatch(Samples, textIds, textIndexes, positionIds, vae, vit, textLoss, DataIndexes, Rank);
        }
        catch
        {
            foreach (IDisposable item in owned) item.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks internal consistency and throws <see cref="PackedBatchValidationException"/> naming the first bad
    /// field: lengths and shapes, dtypes, index ranges and ascending order, split lengths summing to sample lengths,
    /// text/ViT/VAE positions partitioning 0..N−1, MSE positions = noisy latent slots inside image splits, one timestep per image, and
    /// the model limits when given. Reads the tensors on the host (copies them there when on CUDA), so call it
    /// before moving the batch in hot paths.
    /// </summary>
    /// <param name="limits">Optional model limits to check as well.</param>
    /// <exception cref="PackedBatchValidationException">A field is inconsistent.</exception>
    public void Validate(PackedBatchLimits? limits = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        PackedBatchValidator.Validate(this, limits ?? new PackedBatchLimits());
    }

    /// <summary>Every tensor of the batch with its reference name.</summary>
    /// <returns>(name, tensor) pairs, groups included when present.</returns>
    public IEnumerable<(string Name, Tensor Tensor)> NamedTensors()
    {
        yield return ("packed_text_ids", PackedTextIds);
        yield return ("packed_text_indexes", PackedTextIndexes);
        yield return ("packed_position_ids", PackedPositionIds);
        foreach (var item in Vae?.Tensors() ?? []) yield return item;
        foreach (var item in Vit?.Tensors() ?? []) yield return item;
        foreach (var item in TextLoss?.Tensors() ?? []) yield return item;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        PackedTextIds.Dispose();
        PackedTextIndexes.Dispose();
        PackedPositionIds.Dispose();
        Vae?.Dispose();
        Vit?.Dispose();
        TextLoss?.Dispose();
    }

    private static T Track<T>(List<IDisposable> owned, T item) where T : IDisposable
    {
        owned.Add(item);
        return item;
    }
}
