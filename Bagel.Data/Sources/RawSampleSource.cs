using Bagel.Core.DataStatus;
using Bagel.Data.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Bagel.Data.Sources;

/// <summary>
/// A source of raw records for one dataset group: it lists its sharding units and streams one worker's slice of
/// them forever (wrapping at the end, as the reference does), resuming after a saved position. Implement it to
/// plug in a custom format. Bad records are counted in <see cref="DataSkipCounters"/> and skipped, never thrown.
/// </summary>
public abstract class RawSampleSource
{
    /// <summary>Creates the source.</summary>
    /// <param name="group">The dataset group (YAML top-level key) the positions are recorded under.</param>
    /// <param name="logger">For the source's own messages (passes are counted and logged by the skip counters).</param>
    protected RawSampleSource(string group, ILogger? logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        Group = group;
        Logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    /// <summary>The dataset group.</summary>
    public string Group { get; }

    /// <summary>The kind of position this source records (its resume positions must match).</summary>
    public abstract SourcePositionKind PositionKind { get; }

    /// <summary>The number of sharding units (files, row groups, lines or images).</summary>
    public abstract int UnitCount { get; }

    /// <summary>The logger.</summary>
    protected ILogger Logger { get; }

    /// <summary>
    /// Streams one worker's slice forever. Yields nothing only if every record of the slice is bad; in that case it
    /// throws after one full pass instead of spinning (a source that yields nothing is an error).
    /// </summary>
    /// <param name="slice">Which rank and worker.</param>
    /// <param name="randomBelow">The data-seeded generator for the unit shuffle (identical on every rank).</param>
    /// <param name="resumeAfter">The last consumed position of this worker (the next record is read), or null.
    /// Its kind must be this source's <see cref="PositionKind"/>.</param>
    /// <param name="skips">Where bad records are counted.</param>
    /// <param name="cancellationToken">Stops the stream.</param>
    /// <returns>The records.</returns>
    public async IAsyncEnumerable<RawSample> ReadAsync(WorkerSlice slice, Func<int, int> randomBelow, SourcePosition? resumeAfter,
        DataSkipCounters skips, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(slice);
        ArgumentNullException.ThrowIfNull(skips);
        object units = ShardUnits(slice, randomBelow);
        if (resumeAfter is not null && resumeAfter.Kind != PositionKind)
            throw new ArgumentException($"Resume position {resumeAfter} of group '{Group}' is a {resumeAfter.Kind} position; this source records {PositionKind} positions.", nameof(resumeAfter));
        IReadOnlyList<long>? start = resumeAfter?.Indexes;
        while (true)
        {
            bool any = false;
            await foreach (var sample in ReadPassAsync(units, slice, start, skips, cancellationToken).ConfigureAwait(false))
            {
                any = true;
                yield return sample;
            }
            if (!any && start is null)
                throw new InvalidOperationException($"Data source '{Group}' (rank {slice.Rank}, worker {slice.Worker}) yielded no valid record in a full pass over its slice; see the skip warnings.");
            start = null;
            skips.RecordPass(Group, slice.Rank, slice.Worker);
        }
    }

    /// <summary>
    /// Reads the one record at <paramref name="position"/> of a worker's slice (to refill a packer buffer on resume),
    /// or null when that record is now bad (counted in <paramref name="skips"/>).
    /// </summary>
    /// <param name="slice">Which rank and worker.</param>
    /// <param name="randomBelow">The data-seeded shuffle generator, as for <see cref="ReadAsync"/>.</param>
    /// <param name="position">The record's position.</param>
    /// <param name="skips">Where bad records are counted.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The record, or null.</returns>
    public async Task<RawSample?> ReadAtAsync(WorkerSlice slice, Func<int, int> randomBelow, SourcePosition position, DataSkipCounters skips, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(position);
        if (position.Kind != PositionKind)
            throw new ArgumentException($"Position {position} of group '{Group}' is a {position.Kind} position; this source records {PositionKind} positions.", nameof(position));
        object units = ShardUnits(slice, randomBelow);
        long[] before = [.. position.Indexes];
        before[^1] -= 1; // "resume after the previous row" reads exactly this row first
        await foreach (var sample in ReadPassAsync(units, slice, before, skips, cancellationToken).ConfigureAwait(false))
            return sample.Index.Position.Equals(position) ? sample : null;
        return null;
    }

    /// <summary>Computes a worker's units (see <see cref="UnitSharding"/>). Called per read, so one source instance
    /// serves several workers at once.</summary>
    /// <param name="slice">Which rank and worker.</param>
    /// <param name="randomBelow">The data-seeded shuffle generator.</param>
    /// <returns>The worker's units, passed back to <see cref="ReadPassAsync"/>.</returns>
    protected abstract object ShardUnits(WorkerSlice slice, Func<int, int> randomBelow);

    /// <summary>Reads one pass over the worker's units, starting after <paramref name="resumeAfter"/> when given.</summary>
    /// <param name="units">What <see cref="ShardUnits"/> returned for this worker.</param>
    /// <param name="slice">Which rank and worker.</param>
    /// <param name="resumeAfter">The last consumed position, or null to start at the beginning.</param>
    /// <param name="skips">Where bad records are counted.</param>
    /// <param name="cancellationToken">Stops the pass.</param>
    /// <returns>The records of the pass.</returns>
    protected abstract IAsyncEnumerable<RawSample> ReadPassAsync(object units, WorkerSlice slice, IReadOnlyList<long>? resumeAfter, DataSkipCounters skips, CancellationToken cancellationToken);

}
