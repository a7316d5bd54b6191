using Bagel.Data.Config;
using Parquet;
using Parquet.Serialization;

namespace Bagel.Data.Sources;

/// <summary>Parquet helpers shared by the parquet sources: shard selection and one-row-group reads.</summary>
internal static class ParquetFiles
{
    // Untyped reads may return ReadOnlyMemory cells; Bytes/Text below accept both forms (the Prefer* switches are process-global).
    private static readonly ParquetOptions ReadOptions = new();

    /// <summary>
    /// The reference's <c>num_used_data</c> file selection: the folder's <c>.parquet</c> files, repeated until there
    /// are enough, truncated to <paramref name="numUsed"/>. Departure: files are taken in sorted order, not raw
    /// directory-listing order, so the selection does not depend on the file system.
    /// </summary>
    public static List<string> Select(string folder, long numUsed, string group)
    {
        var files = Directory.Exists(folder)
            ? Directory.GetFiles(folder, "*.parquet").Order(StringComparer.Ordinal).ToList()
            : throw new DataConfigException(null, group, $"parquet folder '{folder}' does not exist.");
        if (files.Count == 0) throw new DataConfigException(null, group, $"no .parquet files in '{folder}'.");
        var selected = new List<string>();
        while (selected.Count < numUsed) selected.AddRange(files);
        return selected.GetRange(0, (int)numUsed);
    }

    /// <summary>Reads one row group's rows as column-name dictionaries (only that row group is in memory).</summary>
    public static async Task<RowGroupRows> ReadRowGroupAsync(Stream stream, int rowGroup, CancellationToken cancellationToken)
    {
        stream.Position = 0;
        var result = await ParquetSerializer.DeserializeUntypedAsync(stream, ReadOptions, rowGroup, cancellationToken).ConfigureAwait(false);
        return new RowGroupRows(result.Data, result.Schema.Fields.Select(f => f.Name).ToHashSet(StringComparer.Ordinal));
    }

    /// <summary>The number of row groups of an open file.</summary>
    public static async Task<int> RowGroupCountAsync(Stream stream, CancellationToken cancellationToken)
    {
        stream.Position = 0;
        await using var reader = await ParquetReader.CreateAsync(stream, leaveStreamOpen: true, cancellationToken: cancellationToken).ConfigureAwait(false);
        return reader.RowGroupCount;
    }

    /// <summary>Binary cell as bytes (null stays null).</summary>
    public static byte[]? Bytes(object? value) => value switch
    {
        null => null,
        byte[] b => b,
        ReadOnlyMemory<byte> m => m.ToArray(),
        Memory<byte> m => m.ToArray(),
        _ => null,
    };

    /// <summary>String cell as string (null stays null; binary is decoded as UTF-8 as pyarrow does for strings).</summary>
    public static string? Text(object? value) => value switch
    {
        null => null,
        string s => s,
        ReadOnlyMemory<char> m => m.ToString(),
        byte[] b => System.Text.Encoding.UTF8.GetString(b),
        _ => value.ToString(),
    };

    /// <summary>A list cell as its items, or null when the cell is not a list.</summary>
    public static IReadOnlyList<object?>? List(object? value) => value switch
    {
        string or byte[] or null => null,
        System.Collections.IEnumerable items => items.Cast<object?>().ToList(),
        _ => null,
    };
}

/// <summary>
/// One row group as read: its rows and the file's top-level column names. A row's dictionary omits a column whose
/// cell is null, so columns are checked against the schema and cells read with <see cref="Cell"/>.
/// </summary>
/// <param name="Rows">The rows.</param>
/// <param name="Columns">The top-level column names of the file's schema.</param>
internal sealed record RowGroupRows(IList<Dictionary<string, object>> Rows, IReadOnlySet<string> Columns)
{
    /// <summary>A cell, or null when it is null (absent from the row's dictionary).</summary>
    public object? Cell(int row, string column) => Rows[row].TryGetValue(column, out object? value) ? value : null;
}
