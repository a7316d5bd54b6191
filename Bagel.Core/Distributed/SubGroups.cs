using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>
/// The two process groups of hybrid sharding (the reference's FSDP <c>HYBRID_SHARD</c>): parameters are sharded over
/// <see cref="Shard"/> (ranks [g·n, (g+1)·n) for n = <c>num_shard</c>) and replicated over <see cref="Replicate"/> (the
/// ranks with the same index within their shard group: r mod n). With n equal to the world size this is full sharding
/// (<see cref="Replicate"/> has one rank); with n = 1, plain data parallelism (<see cref="Shard"/> has one rank).
/// </summary>
/// <param name="Shard">This rank's shard group; its rank is this rank's shard index (world rank mod n).</param>
/// <param name="Replicate">This rank's replicate group; its rank is this rank's shard-group index (world rank div n).</param>
public sealed record HybridShardGroups(IProcessGroup Shard, IProcessGroup Replicate) : IDisposable
{
    /// <summary>Disposes both sub-groups (the replicate group first).</summary>
    public void Dispose()
    {
        Replicate.Dispose();
        Shard.Dispose();
    }
}

/// <summary>Building sub-groups of an <see cref="IProcessGroup"/>.</summary>
public static class SubGroupExtensions
{
    /// <summary>
    /// Splits <paramref name="group"/> into the shard and replicate groups of hybrid sharding (see
    /// <see cref="HybridShardGroups"/>). Collective: every rank of <paramref name="group"/> calls it with the same
    /// <paramref name="numShard"/>, in the same order relative to the other collectives.
    /// </summary>
    /// <param name="group">The group to split (usually the world).</param>
    /// <param name="numShard">Ranks per shard group; divides the group's size.</param>
    /// <returns>The two sub-groups; the caller disposes them (before <paramref name="group"/>).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="numShard"/> is not positive or does not divide the size.</exception>
    public static HybridShardGroups CreateHybridShardGroups(this IProcessGroup group, int numShard)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (numShard <= 0 || group.WorldSize % numShard != 0)
            throw new ArgumentOutOfRangeException(nameof(numShard), numShard,
                $"{group.Backend}: rank {group.Rank}: num_shard must be positive and divide the world size {group.WorldSize}.");
        IProcessGroup shard = group.Split(group.Rank / numShard, group.Rank);
        try
        {
            return new HybridShardGroups(shard, group.Split(group.Rank % numShard, group.Rank));
        }
        catch
        {
            shard.Dispose();
            throw;
        }
    }
}

/// <summary>
/// One rank's place in a split, computed identically on every rank from every rank's (color, key), exchanged with
/// the parent's all-gather: the ranks with this rank's color, ordered by key and then by parent rank.
/// </summary>
/// <param name="Rank">This rank's rank in its sub-group.</param>
/// <param name="Size">The sub-group's size.</param>
/// <param name="ParentRanks">The parent rank of each sub-group rank.</param>
internal sealed record SubGroupPlan(int Rank, int Size, int[] ParentRanks)
{
    /// <summary>Exchanges (color, key) over <paramref name="parent"/> (a collective, bounded by its timeout) and plans the split.</summary>
    public static SubGroupPlan Exchange(IProcessGroup parent, int color, int key, torch.Device? device)
    {
        ArgumentNullException.ThrowIfNull(parent);
        if (color < 0)
            throw new ArgumentOutOfRangeException(nameof(color), color, $"{parent.Backend}: rank {parent.Rank}: a sub-group's color must be 0 or more (every rank joins one sub-group).");
        using var scope = torch.NewDisposeScope();
        torch.Tensor mine = torch.tensor(new long[] { color, key });
        torch.Tensor all = torch.zeros(2L * parent.WorldSize, torch.ScalarType.Int64);
        if (device is not null && device.type != DeviceType.CPU)
        {
            mine = mine.to(device);
            all = all.to(device);
        }
        parent.AllGather(mine, all);
        long[] pairs = all.cpu().data<long>().ToArray();
        return Plan(pairs, parent.Rank);
    }

    /// <summary>Plans the split from every rank's (color, key) pair, flattened in rank order.</summary>
    public static SubGroupPlan Plan(IReadOnlyList<long> pairs, int parentRank)
    {
        long color = pairs[2 * parentRank];
        int[] members = [.. Enumerable.Range(0, pairs.Count / 2).Where(r => pairs[2 * r] == color).OrderBy(r => pairs[2 * r + 1]).ThenBy(r => r)];
        return new SubGroupPlan(Array.IndexOf(members, parentRank), members.Length, members);
    }
}
