using Bagel.Core.Batching;
using Bagel.Core.Randomness;

namespace Bagel.Core.DataStatus;

/// <summary>
/// Keeps one rank's data positions as training consumes batches: after each micro-step, <see cref="Record(PackedBatch)"/>
/// sets <c>positions[group][worker] = position</c> for every sample of the batch in packing order (last write wins),
/// as the reference's training loop does (training.md §2.6). <see cref="Snapshot"/> adds the pending samples and RNG
/// states for a checkpoint. Not thread-safe: the training loop owns it.
/// </summary>
public sealed class DataStatusTracker
{
    private readonly Dictionary<string, Dictionary<int, SourcePosition>> _positions = new(StringComparer.Ordinal);

    /// <summary>Creates a tracker for <paramref name="rank"/>, optionally continuing from a resumed status.</summary>
    /// <param name="rank">The rank.</param>
    /// <param name="resumed">The status this rank resumed from (its positions are the starting point), or null.</param>
    public DataStatusTracker(int rank, RankDataStatus? resumed = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        Rank = rank;
        if (resumed is null) return;
        foreach ((string group, IReadOnlyDictionary<int, SourcePosition> workers) in resumed.Positions)
            _positions[group] = new Dictionary<int, SourcePosition>(workers);
    }

    /// <summary>The rank whose positions are tracked.</summary>
    public int Rank { get; }

    /// <summary>Records the samples of a trained batch, in packing order.</summary>
    /// <param name="batch">The batch (of this rank).</param>
    /// <exception cref="ArgumentException">The batch belongs to another rank.</exception>
    public void Record(PackedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Rank != Rank)
            throw new ArgumentException($"The batch belongs to rank {batch.Rank}, but this tracker records rank {Rank}.", nameof(batch));
        Record(batch.DataIndexes);
    }

    /// <summary>Records samples in packing order (last write per group and worker wins).</summary>
    /// <param name="samples">The samples' data indexes.</param>
    public void Record(IEnumerable<SampleDataIndex> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        foreach (SampleDataIndex sample in samples)
        {
            if (!_positions.TryGetValue(sample.Group, out Dictionary<int, SourcePosition>? workers))
                _positions[sample.Group] = workers = [];
            workers[sample.WorkerId] = sample.Position;
        }
    }

    /// <summary>This rank's status for a checkpoint: a copy of the positions plus what is pending and the RNG states.</summary>
    /// <param name="packerBuffer">Samples waiting in the packer's buffer, oldest first.</param>
    /// <param name="prefetched">Samples read ahead by workers, in delivery order.</param>
    /// <param name="rngStates">The rank's stream states (e.g. <see cref="RandomStreams.GetStates"/>).</param>
    /// <param name="workerRngStates">Each worker's stream states.</param>
    /// <param name="torchGlobalRngState">torch's global generator state (<see cref="TorchGlobalRandom.GetState"/>).</param>
    /// <returns>A snapshot that later records do not change.</returns>
    public RankDataStatus Snapshot(
        IReadOnlyList<SampleDataIndex>? packerBuffer = null,
        IReadOnlyList<SampleDataIndex>? prefetched = null,
        IReadOnlyDictionary<string, RandomSourceState>? rngStates = null,
        IReadOnlyDictionary<int, IReadOnlyDictionary<string, RandomSourceState>>? workerRngStates = null,
        byte[]? torchGlobalRngState = null) => new()
    {
        Rank = Rank,
        Positions = _positions.ToDictionary(
            group => group.Key,
            group => (IReadOnlyDictionary<int, SourcePosition>)new Dictionary<int, SourcePosition>(group.Value), StringComparer.Ordinal),
        PackerBuffer = [.. packerBuffer ?? []],
        Prefetched = [.. prefetched ?? []],
        RngStates = rngStates ?? new Dictionary<string, RandomSourceState>(),
        WorkerRngStates = workerRngStates ?? new Dictionary<int, IReadOnlyDictionary<string, RandomSourceState>>(),
        TorchGlobalRngState = torchGlobalRngState,
    };
}
