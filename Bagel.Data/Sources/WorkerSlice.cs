namespace Bagel.Data.Sources;

/// <summary>Which data worker of which rank reads a slice of a source's units.</summary>
/// <param name="Rank">The rank (0-based).</param>
/// <param name="WorldSize">The number of ranks.</param>
/// <param name="Worker">The worker of this rank (0-based).</param>
/// <param name="NumWorkers">Workers per rank; 0 means "no worker processes" as in the reference (the whole rank
/// slice, unreversed, read as worker 0).</param>
public sealed record WorkerSlice(int Rank, int WorldSize, int Worker, int NumWorkers)
{
    /// <summary>The single-process, single-worker slice.</summary>
    public static WorkerSlice Single { get; } = new(0, 1, 0, 1);
}

/// <summary>
/// The reference's unit sharding (training.md 2.4): sort the units, shuffle them with the data seed, give rank r the
/// r-th of <c>len / world_size</c> equal parts (dropping the remainder), give worker w the w-th of
/// <c>per_rank / num_workers</c> equal parts of that, reversed. Unlike the reference, an empty slice is an error
/// naming the counts instead of a silent hang.
/// </summary>
public static class UnitSharding
{
    /// <summary>Computes one worker's units.</summary>
    /// <typeparam name="T">The unit type.</typeparam>
    /// <param name="units">Every unit of the source.</param>
    /// <param name="comparer">The sort order applied before shuffling.</param>
    /// <param name="randomBelow">Draws a uniform integer in [0, n) from the data-seeded generator (the shuffle's only randomness).</param>
    /// <param name="slice">Which rank and worker.</param>
    /// <param name="sourceName">For the error message.</param>
    /// <returns>The worker's units in reading order.</returns>
    /// <exception cref="InvalidOperationException">The worker would receive no unit.</exception>
    public static IReadOnlyList<T> Slice<T>(IReadOnlyList<T> units, IComparer<T> comparer, Func<int, int> randomBelow, WorkerSlice slice, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(units);
        ArgumentNullException.ThrowIfNull(randomBelow);
        ArgumentNullException.ThrowIfNull(slice);
        if (slice.WorldSize < 1 || slice.Rank < 0 || slice.Rank >= slice.WorldSize)
            throw new ArgumentException($"rank {slice.Rank} is outside world size {slice.WorldSize}.", nameof(slice));
        if (slice.NumWorkers < 0 || (slice.NumWorkers > 0 && (slice.Worker < 0 || slice.Worker >= slice.NumWorkers)))
            throw new ArgumentException($"worker {slice.Worker} is outside {slice.NumWorkers} workers.", nameof(slice));

        var ordered = units.Order(comparer).ToList();
        // Fisher-Yates from the end, the same structure as Python's random.shuffle (draws differ: our own generator).
        for (int i = ordered.Count - 1; i > 0; i--)
        {
            int j = randomBelow(i + 1);
            (ordered[i], ordered[j]) = (ordered[j], ordered[i]);
        }
        int perRank = ordered.Count / slice.WorldSize;
        var rankUnits = ordered.GetRange(slice.Rank * perRank, perRank);
        List<T> result;
        if (slice.NumWorkers == 0)
        {
            result = rankUnits;
        }
        else
        {
            int perWorker = perRank / slice.NumWorkers;
            result = rankUnits.GetRange(slice.Worker * perWorker, perWorker);
            result.Reverse();
        }
        if (result.Count == 0)
            throw new InvalidOperationException(
                $"Data source '{sourceName}' has {units.Count} units (files, row groups or lines) for {slice.WorldSize} rank(s) x " +
                $"{Math.Max(1, slice.NumWorkers)} worker(s), so rank {slice.Rank} worker {slice.Worker} gets none. " +
                "Raise num_used_data (its sum must exceed ranks x workers) or lower num_workers.");
        return result;
    }
}
