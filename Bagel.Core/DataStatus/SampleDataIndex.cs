namespace Bagel.Core.DataStatus;

/// <summary>
/// Identifies one sample's source for the data status: its dataset group, the data worker that read it and its
/// position (the reference's per-sample <c>data_indexes</c> dict, training.md §2.6).
/// </summary>
/// <param name="Group">The dataset group name (the YAML top-level key, e.g. <c>t2i_pretrain</c>).</param>
/// <param name="WorkerId">The data worker id within the rank (0-based).</param>
/// <param name="Position">The sample's position in that worker's slice.</param>
public sealed record SampleDataIndex(string Group, int WorkerId, SourcePosition Position)
{
    /// <summary>
    /// The seed of the sample's own draws (caption or wording choice, edit chain ends), when the data pipeline gives
    /// each sample its own stream; with it, a sample re-read from <see cref="Position"/> on resume is built identically.
    /// Null where not used.
    /// </summary>
    public long? SampleSeed { get; init; }
}
