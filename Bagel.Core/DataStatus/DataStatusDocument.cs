using Bagel.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Bagel.Core.DataStatus;

/// <summary>
/// The data status a checkpoint stores (Bagel.NET's replacement for the reference's <c>data_status.pt</c>): one
/// <see cref="RankDataStatus"/> per rank, the world size and worker count it was saved with, and a format version.
/// Written and read by <see cref="DataStatusFile"/> as JSON.
/// </summary>
/// <remarks>
/// Resume is exact only with the same world size and worker count, because each worker's slice of the data depends
/// on both (training.md §2.4). <see cref="ForResume"/> refuses a mismatch unless the caller allows the documented
/// inexact fallback, which is the reference's behaviour.
/// </remarks>
public sealed record DataStatusDocument
{
    /// <summary>The format version this build writes and reads.</summary>
    public const int CurrentFormatVersion = 1;

    /// <summary>The file's format version; <see cref="CurrentFormatVersion"/> for new documents.</summary>
    public int FormatVersion { get; init; } = CurrentFormatVersion;

    /// <summary>The number of ranks that saved it.</summary>
    public required int WorldSize { get; init; }

    /// <summary>The number of data workers per rank (0 means the data is read inline, as worker 0).</summary>
    public required int NumWorkers { get; init; }

    /// <summary>The training step whose batches the status includes (the checkpoint's step), or null.</summary>
    public long? Step { get; init; }

    /// <summary>One entry per rank, indexed by rank.</summary>
    public required IReadOnlyList<RankDataStatus> Ranks { get; init; }

    /// <summary>Checks the document's own consistency.</summary>
    /// <param name="source">The file it came from, for the message (optional).</param>
    /// <exception cref="DataStatusFormatException">A count, rank or worker id is out of range.</exception>
    public void Validate(string? source = null)
    {
        string where = source is null ? "Data status" : $"Data status '{source}'";
        if (FormatVersion != CurrentFormatVersion)
            throw new DataStatusFormatException($"{where} has format version {FormatVersion}; this build handles {CurrentFormatVersion}.");
        if (WorldSize < 1)
            throw new DataStatusFormatException($"{where}: world_size is {WorldSize}; it is at least 1.");
        if (NumWorkers < 0)
            throw new DataStatusFormatException($"{where}: num_workers is {NumWorkers}; it is at least 0.");
        if (Ranks.Count != WorldSize)
            throw new DataStatusFormatException($"{where}: {Ranks.Count} rank entries for world_size {WorldSize}; there is one per rank.");
        int workerLimit = Math.Max(1, NumWorkers);
        for (int r = 0; r < Ranks.Count; r++)
        {
            RankDataStatus rank = Ranks[r];
            if (rank.Rank != r)
                throw new DataStatusFormatException($"{where}: entry {r} is for rank {rank.Rank}; entries are indexed by rank.");
            IEnumerable<int> workers = rank.Positions.Values.SelectMany(p => p.Keys)
                .Concat(rank.PackerBuffer.Select(s => s.WorkerId)).Concat(rank.Prefetched.Select(s => s.WorkerId))
                .Concat(rank.WorkerRngStates.Keys);
            foreach (int worker in workers)
                if (worker < 0 || worker >= workerLimit)
                    throw new DataStatusFormatException($"{where}: rank {r} names worker {worker}, outside 0..{workerLimit - 1} for num_workers {NumWorkers}.");
        }
    }

    /// <summary>
    /// The status rank <paramref name="rank"/> resumes from in a run with <paramref name="worldSize"/> ranks and
    /// <paramref name="numWorkers"/> workers per rank.
    /// </summary>
    /// <param name="rank">This run's rank.</param>
    /// <param name="worldSize">This run's world size.</param>
    /// <param name="numWorkers">This run's worker count per rank.</param>
    /// <param name="allowInexact">When the sizes differ: false (default) throws; true falls back to the reference's
    /// behaviour: rank r takes entry r if it exists (else null = start from scratch), keeps the positions of the
    /// worker ids that still exist, and drops buffered/prefetched samples and RNG states (logged as a warning).</param>
    /// <param name="logger">Receives the fallback warning.</param>
    /// <returns>The rank's status, or null when there is none for it.</returns>
    /// <exception cref="DataStatusMismatchException">The sizes differ and <paramref name="allowInexact"/> is false.</exception>
    public RankDataStatus? ForResume(int rank, int worldSize, int numWorkers, bool allowInexact = false, ILogger? logger = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, worldSize);
        if (worldSize == WorldSize && numWorkers == NumWorkers) return Ranks[rank];
        if (!allowInexact)
            throw new DataStatusMismatchException(
                $"The data status was saved with world size {WorldSize} and {NumWorkers} worker(s) per rank, but this run has {worldSize} and {numWorkers}. " +
                "Each worker's slice of the data depends on both, so the saved positions do not apply exactly. Resume with the same sizes, " +
                "allow the inexact fallback (positions of surviving rank/worker ids kept, buffered samples and RNG states dropped), or disable data-status resume.");
        if (logger is not null) CoreLog.DataStatusInexactResume(logger, WorldSize, NumWorkers, worldSize, numWorkers);
        if (rank >= Ranks.Count) return null;
        int workerLimit = Math.Max(1, numWorkers);
        return new RankDataStatus
        {
            Rank = rank,
            Positions = Ranks[rank].Positions.ToDictionary(
                group => group.Key,
                group => (IReadOnlyDictionary<int, SourcePosition>)group.Value.Where(w => w.Key < workerLimit).ToDictionary(w => w.Key, w => w.Value)),
        };
    }
}
