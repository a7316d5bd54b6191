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
/// Thread-safe counts of skipped records by reason and group, with a warning per skip that names the file and row.
/// The counts go into the metrics and the data status.
/// </summary>
public sealed class DataSkipCounters
{
    private readonly ConcurrentDictionary<(string Group, SkipReason Reason), long> _counts = new();
    private readonly ILogger _logger;

    /// <summary>Creates counters that log through <paramref name="logger"/>.</summary>
    /// <param name="logger">Where the warnings go (null: nowhere).</param>
    public DataSkipCounters(ILogger? logger = null)
    {
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    /// <summary>The total number of skips.</summary>
    public long Total => _counts.Values.Sum();

    /// <summary>Records one skip and logs a warning naming its origin.</summary>
    /// <param name="group">The dataset group.</param>
    /// <param name="reason">Why.</param>
    /// <param name="origin">File and row (or line) of the record.</param>
    /// <param name="detail">What exactly was wrong.</param>
    public void Skip(string group, SkipReason reason, string origin, string detail)
    {
        long count = _counts.AddOrUpdate((group, reason), 1, (_, n) => n + 1);
        DataLog.SkippedRecord(_logger, group, reason, origin, detail, count);
    }

    /// <summary>The count for one reason (all groups, or one group).</summary>
    /// <param name="reason">The reason.</param>
    /// <param name="group">A group, or null for all.</param>
    /// <returns>The count.</returns>
    public long Count(SkipReason reason, string? group = null) =>
        _counts.Where(kv => kv.Key.Reason == reason && (group is null || kv.Key.Group == group)).Sum(kv => kv.Value);

    /// <summary>A snapshot of every non-zero count.</summary>
    /// <returns>(group, reason) to count.</returns>
    public IReadOnlyDictionary<(string Group, SkipReason Reason), long> Snapshot() => new Dictionary<(string, SkipReason), long>(_counts);
}
