using Bagel.Core.Randomness;

namespace Bagel.Core.DataStatus;

/// <summary>
/// One rank's data state at a checkpoint: the reference's <c>{group: {worker_id: position}}</c> plus what the
/// reference loses on resume: the samples waiting in the packer's buffer and those prefetched by workers (as source
/// positions, so they can be re-read before the workers continue) and every RNG state.
/// </summary>
public sealed record RankDataStatus
{
    /// <summary>The rank (0-based).</summary>
    public required int Rank { get; init; }

    /// <summary>Per dataset group, per worker id: the position of the last sample that worker delivered into a
    /// trained batch (last write wins, packing order). A resume restarts each worker at the next row.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<int, SourcePosition>> Positions { get; init; } =
        new Dictionary<string, IReadOnlyDictionary<int, SourcePosition>>();

    /// <summary>Samples read but waiting in the packer's overflow buffer, oldest first (re-read on resume, in this order).</summary>
    public IReadOnlyList<SampleDataIndex> PackerBuffer { get; init; } = [];

    /// <summary>Samples read by workers ahead of the packer, in delivery order (re-read on resume after the buffer).</summary>
    public IReadOnlyList<SampleDataIndex> Prefetched { get; init; } = [];

    /// <summary>The rank's own random streams by purpose name (e.g. <see cref="RandomPurposes.FlowNoise"/>).</summary>
    public IReadOnlyDictionary<string, RandomSourceState> RngStates { get; init; } = new Dictionary<string, RandomSourceState>();

    /// <summary>Per worker id, that worker's random streams by purpose name.</summary>
    public IReadOnlyDictionary<int, IReadOnlyDictionary<string, RandomSourceState>> WorkerRngStates { get; init; } =
        new Dictionary<int, IReadOnlyDictionary<string, RandomSourceState>>();

    /// <summary>torch's global CPU generator state on this rank (<see cref="TorchGlobalRandom.GetState"/>), or null.</summary>
    public byte[]? TorchGlobalRngState { get; init; }
}
