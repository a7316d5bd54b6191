using TorchSharp;

namespace Bagel.Training.Sharding;

/// <summary>One trainable tensor in a <see cref="FlatShardLayout"/>.</summary>
/// <param name="Name">Its state-dict key (the reference's name).</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Offset">Its first element in the flat buffer.</param>
public sealed record FlatShardEntry(string Name, long[] Shape, long Offset)
{
    /// <summary>Its element count.</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>One past its last element in the flat buffer.</summary>
    public long End => Offset + Elements;
}

/// <summary>
/// The flat layout the sharded modes share: the trainable parameters in module order, end to end, padded with zeros
/// to a multiple of the shard count W. Shard r is elements <c>[r·S, (r+1)·S)</c> with <c>S = ⌈N / W⌉</c>; the offsets
/// of the tensors do not depend on W, so state saved with one world size can be re-sliced for another.
/// </summary>
public sealed class FlatShardLayout
{
    /// <summary>Lays out <paramref name="entries"/> (name and shape, in order) over <paramref name="shards"/> shards.</summary>
    /// <param name="entries">The tensors, in flat order.</param>
    /// <param name="shards">The number of shards (the world size, or num_shard under hybrid sharding).</param>
    public FlatShardLayout(IEnumerable<(string Name, long[] Shape)> entries, int shards)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shards);
        var list = new List<FlatShardEntry>();
        long offset = 0;
        foreach ((string name, long[] shape) in entries)
        {
            var entry = new FlatShardEntry(name, shape, offset);
            list.Add(entry);
            offset = entry.End;
        }
        if (offset == 0) throw new ArgumentException("No trainable parameter: nothing to shard. Check the freeze_* options.", nameof(entries));
        Entries = list;
        TotalElements = offset;
        Shards = shards;
        ShardElements = (offset + shards - 1) / shards;
    }

    /// <summary>The layout of <paramref name="module"/>'s parameters that require grad.</summary>
    /// <param name="module">The model.</param>
    /// <param name="shards">The number of shards.</param>
    public static FlatShardLayout Of(torch.nn.Module module, int shards)
    {
        ArgumentNullException.ThrowIfNull(module);
        return new FlatShardLayout(module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter.shape)), shards);
    }

    /// <summary>The tensors, in flat order.</summary>
    public IReadOnlyList<FlatShardEntry> Entries { get; }

    /// <summary>The elements of all tensors (N, without padding).</summary>
    public long TotalElements { get; }

    /// <summary>The number of shards (W).</summary>
    public int Shards { get; }

    /// <summary>Elements per shard (S = ⌈N / W⌉).</summary>
    public long ShardElements { get; }

    /// <summary>The padded flat length, S·W.</summary>
    public long PaddedElements => ShardElements * Shards;

    /// <summary>The first flat element of shard <paramref name="shard"/>.</summary>
    public long ShardStart(int shard) => shard * ShardElements;

    /// <summary>The real (unpadded) elements of shard <paramref name="shard"/>.</summary>
    public long OwnedElements(int shard) => Math.Clamp(TotalElements - ShardStart(shard), 0, ShardElements);

    /// <summary>
    /// Where <paramref name="entry"/> and shard <paramref name="shard"/> overlap: the first element in the tensor, the
    /// first element in the shard, and the count (0 when they do not overlap).
    /// </summary>
    public (long InTensor, long InShard, long Count) Overlap(FlatShardEntry entry, int shard)
    {
        ArgumentNullException.ThrowIfNull(entry);
        long start = Math.Max(entry.Offset, ShardStart(shard));
        long end = Math.Min(entry.End, ShardStart(shard) + ShardElements);
        return end <= start ? (0, 0, 0) : (start - entry.Offset, start - ShardStart(shard), end - start);
    }

    /// <summary>The same tensors over <paramref name="shards"/> shards.</summary>
    public FlatShardLayout WithShards(int shards) => new(Entries.Select(e => (e.Name, e.Shape)), shards);

    /// <summary>Whether <paramref name="other"/> lays out the same tensors (names and shapes, in order).</summary>
    public bool SameTensors(FlatShardLayout other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Entries.Count == other.Entries.Count
            && Entries.Zip(other.Entries).All(p => p.First.Name == p.Second.Name && p.First.Shape.SequenceEqual(p.Second.Shape));
    }
}
