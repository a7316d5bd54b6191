using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet;

namespace Bagel.Data.Config;

/// <summary>Row-group facts of one parquet shard.</summary>
/// <param name="NumRowGroups"><c>num_row_groups</c>, the only field the reference reads.</param>
/// <param name="NumRows"><c>num_rows</c>, informational.</param>
public sealed record ParquetShardInfo(int NumRowGroups, long NumRows);

/// <summary>
/// The reference's parquet_info JSON (<c>{"&lt;shard path&gt;": {"num_row_groups": N, "num_rows": M}}</c>), written by a
/// command instead of by hand, and looked up path-independently: a shard matches a key that is its full path, a path
/// relative to the JSON file's folder, or (when unique) a key ending in its file name — so the example file's
/// <c>your_data_path/...</c> placeholder keys (the reference's issues #89 and #107) still resolve.
/// </summary>
public sealed class ParquetInfo
{
    private readonly Dictionary<string, ParquetShardInfo> _byFullPath = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<ParquetShardInfo>> _byFileName = new(StringComparer.Ordinal);

    /// <summary>The JSON file this came from, if any.</summary>
    public string? SourceFile { get; private init; }

    /// <summary>The number of shards described.</summary>
    public int Count => _byFullPath.Count;

    /// <summary>Finds the entry for a shard, or null when the file describes it under no matching key.</summary>
    /// <param name="shardPath">The shard's path.</param>
    /// <returns>The shard's facts, or null.</returns>
    public ParquetShardInfo? Find(string shardPath)
    {
        string full = Path.GetFullPath(shardPath);
        if (_byFullPath.TryGetValue(full, out var info)) return info;
        return _byFileName.TryGetValue(Path.GetFileName(full), out var candidates) && candidates.Count == 1 ? candidates[0] : null;
    }

    /// <summary>Loads a parquet_info JSON; keys that are relative paths resolve against the file's folder.</summary>
    /// <param name="path">The JSON file.</param>
    /// <returns>The lookup.</returns>
    /// <exception cref="DataConfigException">Bad JSON or a bad entry, naming the key.</exception>
    public static ParquetInfo Load(string path)
    {
        string file = Path.GetFullPath(path);
        if (!File.Exists(file)) throw new DataConfigException(file, string.Empty, "file not found.");
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(file)) as JsonObject
                   ?? throw new DataConfigException(file, string.Empty, "expected a JSON object mapping shard paths to {\"num_row_groups\": N}.");
        }
        catch (JsonException ex)
        {
            throw new DataConfigException(file, string.Empty, $"not valid JSON: {ex.Message}", (int?)ex.LineNumber + 1, ex);
        }
        var info = new ParquetInfo { SourceFile = file };
        string baseDir = Path.GetDirectoryName(file)!;
        foreach (var (key, value) in root)
        {
            if (value is not JsonObject entry || entry["num_row_groups"] is not JsonValue groups || !groups.TryGetValue(out int numRowGroups) || numRowGroups < 0)
                throw new DataConfigException(file, key, "each entry needs a non-negative integer \"num_row_groups\".");
            long numRows = entry["num_rows"] is JsonValue rows && rows.TryGetValue(out long r) ? r : -1;
            info.Add(Path.GetFullPath(Path.Combine(baseDir, key)), new ParquetShardInfo(numRowGroups, numRows));
        }
        return info;
    }

    /// <summary>Reads the row-group counts from the shards' own footers (no JSON needed).</summary>
    /// <param name="shardPaths">The shards.</param>
    /// <param name="cancellationToken">Stops between files.</param>
    /// <returns>The lookup.</returns>
    /// <exception cref="DataConfigException">A shard is missing or is not a readable parquet file.</exception>
    public static async Task<ParquetInfo> FromShardsAsync(IEnumerable<string> shardPaths, CancellationToken cancellationToken = default)
    {
        var info = new ParquetInfo();
        foreach (string shard in shardPaths.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            info.Add(shard, await ReadFooterAsync(shard, cancellationToken).ConfigureAwait(false));
        }
        return info;
    }

    /// <summary>
    /// Builds a lookup from facts already known, keyed by full path (for example the merged parquet_info of several
    /// datasets, resolved shard by shard so that one dataset's file-name fallback cannot match another's shards).
    /// </summary>
    /// <param name="shards">Shard path to facts; a path given twice keeps its last facts.</param>
    /// <returns>The lookup.</returns>
    public static ParquetInfo FromFacts(IEnumerable<KeyValuePair<string, ParquetShardInfo>> shards)
    {
        ArgumentNullException.ThrowIfNull(shards);
        var info = new ParquetInfo();
        foreach (var (shard, facts) in shards) info.Add(Path.GetFullPath(shard), facts);
        return info;
    }

    /// <summary>
    /// Writes the parquet_info JSON for every <c>*.parquet</c> file of a folder (sorted by name), atomically.
    /// </summary>
    /// <param name="shardFolder">The folder of shards.</param>
    /// <param name="outputPath">The JSON file to write (its folder is created).</param>
    /// <param name="relativeKeys">When true, keys are paths relative to the JSON file (portable); when false (default),
    /// absolute paths, as the reference builds them (<c>os.path.join(data_dir, name)</c>), so the reference reads it too.</param>
    /// <param name="cancellationToken">Stops between files.</param>
    /// <returns>The number of shards written.</returns>
    public static async Task<int> WriteForFolderAsync(string shardFolder, string outputPath, bool relativeKeys = false, CancellationToken cancellationToken = default)
    {
        string folder = Path.GetFullPath(shardFolder);
        if (!Directory.Exists(folder)) throw new DataConfigException(null, string.Empty, $"shard folder '{folder}' does not exist.");
        string output = Path.GetFullPath(outputPath);
        string outputDir = Path.GetDirectoryName(output)!;
        var shards = Directory.GetFiles(folder, "*.parquet").Order(StringComparer.Ordinal).ToList();
        if (shards.Count == 0) throw new DataConfigException(null, string.Empty, $"no .parquet files in '{folder}'.");
        var json = new JsonObject();
        foreach (string shard in shards)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var facts = await ReadFooterAsync(shard, cancellationToken).ConfigureAwait(false);
            string key = relativeKeys ? Path.GetRelativePath(outputDir, shard) : shard;
            json[key] = new JsonObject { ["num_row_groups"] = facts.NumRowGroups, ["num_rows"] = facts.NumRows };
        }
        Directory.CreateDirectory(outputDir);
        string temp = output + $".{Environment.ProcessId}.tmp";
        await File.WriteAllTextAsync(temp, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken).ConfigureAwait(false);
        File.Move(temp, output, overwrite: true);
        return shards.Count;
    }

    /// <summary>Reads one shard's row-group count and row count from its footer.</summary>
    /// <param name="shard">The parquet file.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The facts.</returns>
    public static async Task<ParquetShardInfo> ReadFooterAsync(string shard, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(shard)) throw new DataConfigException(null, string.Empty, $"parquet shard '{shard}' does not exist.");
        try
        {
            await using var reader = await ParquetReader.CreateAsync(shard, cancellationToken: cancellationToken).ConfigureAwait(false);
            return new ParquetShardInfo(reader.RowGroupCount, reader.Metadata?.NumRows ?? -1);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not DataConfigException)
        {
            throw new DataConfigException(shard, string.Empty, $"not a readable parquet file: {ex.Message}", null, ex);
        }
    }

    private void Add(string fullPath, ParquetShardInfo facts)
    {
        _byFullPath[fullPath] = facts;
        string name = Path.GetFileName(fullPath);
        if (!_byFileName.TryGetValue(name, out var list)) _byFileName[name] = list = [];
        list.Add(facts);
    }
}
