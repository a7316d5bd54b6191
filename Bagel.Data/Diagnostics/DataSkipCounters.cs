using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Bagel.Data.Diagnostics;

/// <summary>Why a record was skipped. Every skip is counted and logged with its origin; nothing is dropped silently.</summary>
public enum SkipReason
{
    /// <summary>A parquet file or row group could not be read.</summary>
    CorruptParquet,
    /// <summary>A required parquet column is missing or has an unexpected type.</summary>
    BadParquetSchema,
    /// <summary>Image bytes could not be decoded.</summary>
    CorruptImage,
    /// <summary>Image bytes end early (the reference silently fills such images with grey).</summary>
    TruncatedImage,
    /// <summary>An image exceeds the decompression-bomb pixel limit.</summary>
    ImageTooLarge,
    /// <summary>An image file named by a record does not exist.</summary>
    MissingImage,
    /// <summary>A JSONL line is not a valid JSON object.</summary>
    MalformedJsonLine,
    /// <summary>A T2I caption cell is not a JSON object.</summary>
    CaptionNotObject,
    /// <summary>An editing instruction entry is not a list of strings.</summary>
    InstructionNotList,
    /// <summary>An editing instruction entry is an empty list.</summary>
    EmptyInstructionList,
    /// <summary>An editing row has fewer than two images, or instructions that do not match the images.</summary>
    BadEditChain,
    /// <summary>A VLM line places more or fewer images than it lists.</summary>
    ImageTagMismatch,
    /// <summary>A VLM line with no loss-bearing text.</summary>
    NoLossText,
    /// <summary>An image of an image-folder dataset has no caption.</summary>
    MissingCaption,
    /// <summary>A VLM video line (video is not supported; counted, as documented).</summary>
    Video,
    /// <summary>A sample longer than <c>max_num_tokens_per_sample</c>.</summary>
    TooLong,
    /// <summary>A sample the packer had to drop because its buffer was full (the reference's quirk, kept and counted).</summary>
    PackerOverflow,
}

/// <summary>
/// Thread-safe counts of skipped records by reason and group. Each bad record is warned about once, naming its file
/// and row, and counted once: sources loop over their data forever, so a bad record meets the reader again on every
/// pass; those repeats are counted apart (<see cref="RepeatedSkips"/>) and logged only at debug level. The passes
/// each group's workers complete are counted too (<see cref="Passes"/>, logged at debug level). The distinct counts go
/// into the metrics and the data status.
/// </summary>
public sealed class DataSkipCounters
{
    private readonly ConcurrentDictionary<(string Group, SkipReason Reason), long> _counts = new();
    private readonly ConcurrentDictionary<(string Group, SkipReason Reason, string Origin), byte> _seen = new();
    private readonly ConcurrentDictionary<string, long> _passes = new(StringComparer.Ordinal);
    private long _repeats;
    private volatile ILogger _logger;
    private volatile bool _hasLogger;

    /// <summary>Creates counters that log through <paramref name="logger"/>.</summary>
    /// <param name="logger">Where the warnings go (null: nowhere until <see cref="AttachLogger"/>).</param>
    public DataSkipCounters(ILogger? logger = null)
    {
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _hasLogger = logger is not null;
    }

    /// <summary>The number of distinct records skipped (a record skipped again on a later pass counts once).</summary>
    public long Total => _counts.Values.Sum();

    /// <summary>Skips of records that had already been skipped on an earlier pass (not in <see cref="Total"/>).</summary>
    public long RepeatedSkips => Interlocked.Read(ref _repeats);

    /// <summary>
    /// Sends the warnings to <paramref name="logger"/> when these counters were created without one (a trainer hands
    /// its logger to the pipeline this way); a logger given at construction is kept.
    /// </summary>
    /// <param name="logger">The logger.</param>
    /// <returns>True when <paramref name="logger"/> is now used.</returns>
    public bool AttachLogger(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        if (_hasLogger) return false;
        _logger = logger;
        _hasLogger = true;
        return true;
    }

    /// <summary>Records a skip; the first skip of a record logs a warning naming its origin, a repeat only a debug line.</summary>
    /// <param name="group">The dataset group.</param>
    /// <param name="reason">Why.</param>
    /// <param name="origin">File and row (or line) of the record: what makes it the same record on the next pass.</param>
    /// <param name="detail">What exactly was wrong.</param>
    public void Skip(string group, SkipReason reason, string origin, string detail)
    {
        if (!_seen.TryAdd((group, reason, origin), 0))
        {
            Interlocked.Increment(ref _repeats);
            DataLog.SkippedAgain(_logger, group, reason, origin);
            return;
        }
        long count = _counts.AddOrUpdate((group, reason), 1, (_, n) => n + 1);
        DataLog.SkippedRecord(_logger, group, reason, origin, detail, count);
    }

    /// <summary>Records that one worker of <paramref name="group"/> finished a pass over its slice and starts the next (debug log).</summary>
    /// <param name="group">The dataset group.</param>
    /// <param name="rank">The worker's rank.</param>
    /// <param name="worker">The worker.</param>
    public void RecordPass(string group, int rank, int worker)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        long passes = _passes.AddOrUpdate(group, 1, (_, n) => n + 1);
        DataLog.SourceWrapped(_logger, group, rank, worker, passes);
    }

    /// <summary>Passes over their slices completed by the workers of <paramref name="group"/> (summed over workers).</summary>
    /// <param name="group">The dataset group.</param>
    /// <returns>The count.</returns>
    public long Passes(string group) => _passes.GetValueOrDefault(group);

    /// <summary>The count of distinct skipped records for one reason (all groups, or one group).</summary>
    /// <param name="reason">The reason.</param>
    /// <param name="group">A group, or null for all.</param>
    /// <returns>The count.</returns>
    public long Count(SkipReason reason, string? group = null) =>
        _counts.Where(kv => kv.Key.Reason == reason && (group is null || kv.Key.Group == group)).Sum(kv => kv.Value);

    /// <summary>A snapshot of every non-zero count of distinct skipped records.</summary>
    /// <returns>(group, reason) to count.</returns>
    public IReadOnlyDictionary<(string Group, SkipReason Reason), long> Snapshot() => new Dictionary<(string, SkipReason), long>(_counts);
}
