using System.Text.Json.Serialization;

namespace Bagel.Core.DataStatus;

/// <summary>
/// Where one sample came from inside a worker's slice of a dataset group: a kind plus an int64 array whose meaning
/// the kind defines (training.md §2.6). Row indexes are absolute within the row group or line list, so a position
/// survives re-slicing. A position names the sample itself; a resume restarts at the row after it.
/// </summary>
public sealed record SourcePosition
{
    /// <summary>Creates a position, checking the index count against the kind.</summary>
    /// <param name="kind">The kind.</param>
    /// <param name="indexes">The numbers (3 for T2I, 2 for edit, 1 for VLM; any non-empty count for custom).</param>
    /// <exception cref="ArgumentException">The count does not fit the kind, or an index is negative.</exception>
    [JsonConstructor]
    public SourcePosition(SourcePositionKind kind, long[] indexes)
    {
        ArgumentNullException.ThrowIfNull(indexes);
        int expected = ExpectedLength(kind);
        if (expected > 0 ? indexes.Length != expected : indexes.Length == 0)
            throw new ArgumentException($"A {kind} position has {(expected > 0 ? expected.ToString(System.Globalization.CultureInfo.InvariantCulture) : "at least 1")} index(es); got [{string.Join(", ", indexes)}].", nameof(indexes));
        if (indexes.Any(i => i < 0))
            throw new ArgumentException($"A {kind} position holds no negative index; got [{string.Join(", ", indexes)}].", nameof(indexes));
        Kind = kind;
        Indexes = indexes;
    }

    /// <summary>The kind (which defines the meaning of <see cref="Indexes"/>).</summary>
    public SourcePositionKind Kind { get; }

    /// <summary>The numbers, outermost first.</summary>
    public long[] Indexes { get; }

    /// <summary>A T2I position.</summary>
    /// <param name="fileIndexInWorkerSlice">The file's index in the worker's (reversed) slice.</param>
    /// <param name="rowGroup">The row group in that file.</param>
    /// <param name="row">The row in that row group.</param>
    /// <returns>The position.</returns>
    public static SourcePosition T2I(long fileIndexInWorkerSlice, long rowGroup, long row) =>
        new(SourcePositionKind.T2IParquet, [fileIndexInWorkerSlice, rowGroup, row]);

    /// <summary>An editing position.</summary>
    /// <param name="globalRowGroup">The row group's index in the group's global unit list.</param>
    /// <param name="row">The row in that row group.</param>
    /// <returns>The position.</returns>
    public static SourcePosition Edit(long globalRowGroup, long row) => new(SourcePositionKind.EditParquet, [globalRowGroup, row]);

    /// <summary>A VLM position.</summary>
    /// <param name="row">The line index.</param>
    /// <returns>The position.</returns>
    public static SourcePosition Vlm(long row) => new(SourcePositionKind.VlmJsonl, [row]);

    /// <summary>The number of indexes a kind carries, or 0 when any non-empty count is allowed.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns>The count.</returns>
    public static int ExpectedLength(SourcePositionKind kind) => kind switch
    {
        SourcePositionKind.T2IParquet => 3,
        SourcePositionKind.EditParquet => 2,
        SourcePositionKind.VlmJsonl => 1,
        SourcePositionKind.ImageFolder => 1,
        _ => 0,
    };

    /// <inheritdoc />
    public bool Equals(SourcePosition? other) =>
        other is not null && Kind == other.Kind && Indexes.AsSpan().SequenceEqual(other.Indexes);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Kind);
        foreach (long index in Indexes) hash.Add(index);
        return hash.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => $"{Kind}[{string.Join(", ", Indexes)}]";
}
