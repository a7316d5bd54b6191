namespace Bagel.Data.Sources;

/// <summary>
/// Where a raw sample came from, in the reference's data-status shapes so a resume restarts at the next row:
/// T2I <c>[file index in the worker slice, row group, row]</c>; edit <c>[row-group index in the worker slice, row]</c>;
/// VLM <c>[line index in the worker slice]</c>; image folder <c>[image index in the worker slice]</c>.
/// Row indexes are absolute within their row group or list.
/// </summary>
/// <param name="Group">The dataset group (YAML top-level key).</param>
/// <param name="Worker">The data worker whose slice holds the sample.</param>
/// <param name="Index">The position, shaped per source kind as above.</param>
public sealed record SourcePosition(string Group, int Worker, IReadOnlyList<long> Index)
{
    /// <inheritdoc />
    public bool Equals(SourcePosition? other) =>
        other is not null && Group == other.Group && Worker == other.Worker && Index.SequenceEqual(other.Index);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Group);
        hash.Add(Worker);
        foreach (long i in Index) hash.Add(i);
        return hash.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => $"{Group}/worker-{Worker}[{string.Join(", ", Index)}]";
}
