using Bagel.Core.Randomness;

namespace Bagel.Core.DataStatus;

/// <summary>
/// One rank's data state at a checkpoint: the reference's <c>{group: {worker_id: position}}</c> plus what the
/// reference loses on resume: the samples waiting in the packer's buffer and those prefetched by workers (as source
/// positions, so they can be re-read before the workers continue) and every RNG state.
/// </summary>
public sealed record RankDataStatus
{
    // Setters map null to empty: the JSON source generator passes null for an absent init-only member (and older
    // writers may omit empty collections), so a missing collection reads as empty, never as null.
    private readonly IReadOnlyDictionary<string, IReadOnlyDictionary<int, SourcePosition>> _positions =
        new Dictionary<string, IReadOnlyDictionary<int, SourcePosition>>();
    private readonly IReadOnlyList<SampleDataIndex> _packerBuffer = [];
    private readonly IReadOnlyList<SampleDataIndex> _prefetched = [];
    private readonly IReadOnlyDictionary<string, RandomSourceState> _rngStates = new Dictionary<string, RandomSourceState>();
    private readonly IReadOnlyDictionary<int, IReadOnlyDictionary<string, RandomSourceState>> _workerRngStates =
        new Dictionary<int, IReadOnlyDictionary<string, RandomSourceState>>();

    /// <summary>The rank (0-based).</summary>
    public required int Rank { get; init; }

    /// <summary>Per dataset group, per worker id: the position of the last sample that worker delivered into a
    /// trained batch (last write wins, packing order). A resume restarts each worker at the next row.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<int, SourcePosition>> Positions
    {
        get => _positions;
        init => _positions = value ?? new Dictionary<string, IReadOnlyDictionary<int, SourcePosition>>();
    }

    /// <summary>Samples read but waiting in the packer's overflow buffer, oldest first (re-read on resume, in this order).</summary>
    public IReadOnlyList<SampleDataIndex> PackerBuffer { get => _packerBuffer; init => _packerBuffer = value ?? []; }

    /// <summary>Samples read by workers ahead of the packer, in delivery order (re-read on resume after the buffer).</summary>
    public IReadOnlyList<SampleDataIndex> Prefetched { get => _prefetched; init => _prefetched = value ?? []; }

    /// <summary>The rank's own random streams by purpose name (e.g. <see cref="RandomPurposes.FlowNoise"/>).</summary>
    public IReadOnlyDictionary<string, RandomSourceState> RngStates
    {
        get => _rngStates;
        init => _rngStates = value ?? new Dictionary<string, RandomSourceState>();
    }

    /// <summary>Per worker id, that worker's random streams by purpose name.</summary>
    public IReadOnlyDictionary<int, IReadOnlyDictionary<string, RandomSourceState>> WorkerRngStates
    {
        get => _workerRngStates;
        init => _workerRngStates = value ?? new Dictionary<int, IReadOnlyDictionary<string, RandomSourceState>>();
    }

    /// <summary>torch's global CPU generator state on this rank (<see cref="TorchGlobalRandom.GetState"/>), or null.</summary>
    public byte[]? TorchGlobalRngState { get; init; }

    /// <summary>
    /// The data worker whose batch is consumed next: batches are taken from the workers in turn, as the reference's
    /// DataLoader does, so a resume must continue the rotation where it stopped (default 0).
    /// </summary>
    public int NextWorker { get; init; }
}
