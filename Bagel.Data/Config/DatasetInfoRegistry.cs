namespace Bagel.Data.Config;

/// <summary>The group kinds (dataset types) the SDK ships, by the reference's registry names.</summary>
public static class DatasetGroupKinds
{
    /// <summary>Text-to-image parquet shards (<c>image</c> bytes + <c>captions</c> JSON string).</summary>
    public const string T2IPretrain = "t2i_pretrain";

    /// <summary>Editing parquet shards (<c>image_list</c>, <c>instruction_list</c>) with parquet_info.</summary>
    public const string UnifiedEdit = "unified_edit";

    /// <summary>VLM conversations: a JSONL file plus an image folder.</summary>
    public const string VlmSft = "vlm_sft";

    /// <summary>Ours: a plain image folder with captions beside the images (a <c>.txt</c> per image or a captions JSONL).</summary>
    public const string T2IImageFolder = "t2i_image_folder";

    /// <summary>Every kind above.</summary>
    public static IReadOnlyList<string> All { get; } = [T2IPretrain, UnifiedEdit, VlmSft, T2IImageFolder];
}

/// <summary>
/// One dataset of the registry (the reference's <c>DATASET_INFO[group][name]</c>). Paths are absolute once loaded:
/// relative paths in a file resolve against that file's folder.
/// </summary>
public sealed record DatasetInfoEntry
{
    /// <summary>The parquet folder, or the image folder for VLM and image-folder datasets (<c>data_dir</c>; required).</summary>
    public required string DataDir { get; init; }

    /// <summary>The parquet_info JSON of an editing dataset (<c>parquet_info_path</c>); optional in Bagel.NET: when
    /// absent, row-group counts are read from the parquet footers.</summary>
    public string? ParquetInfoPath { get; init; }

    /// <summary>The conversations file of a VLM dataset (<c>jsonl_path</c>; required for <c>vlm_sft</c>).</summary>
    public string? JsonlPath { get; init; }

    /// <summary>A captions JSONL for an image-folder dataset (<c>captions_path</c>, ours; lines
    /// <c>{"file_name": "a.png", "caption": "..."}</c>). When absent, each image's caption is the <c>.txt</c> beside it.</summary>
    public string? CaptionsPath { get; init; }

    /// <summary>Informational, as in the reference (<c>num_files</c>; never read by the loaders).</summary>
    public long? NumFiles { get; init; }

    /// <summary>Informational, as in the reference (<c>num_total_samples</c>; never read by the loaders).</summary>
    public long? NumTotalSamples { get; init; }
}

/// <summary>
/// The dataset registry: group name -> dataset name -> <see cref="DatasetInfoEntry"/>, the reference's
/// <c>DATASET_INFO</c>. Load it from a JSON or YAML file with <see cref="Load"/> and extend it in code with
/// <see cref="Add"/>. Unknown keys, missing paths and impossible values are errors naming the key and the file.
/// </summary>
public sealed class DatasetInfoRegistry
{
    private static readonly string[] EntryKeys = ["data_dir", "parquet_info_path", "jsonl_path", "captions_path", "num_files", "num_total_samples", "json_dir"];
    private readonly Dictionary<string, Dictionary<string, DatasetInfoEntry>> _groups = new(StringComparer.Ordinal);

    /// <summary>The file this registry was loaded from, if any.</summary>
    public string? SourceFile { get; private init; }

    /// <summary>The group names present.</summary>
    public IEnumerable<string> Groups => _groups.Keys;

    /// <summary>Adds (or replaces) a dataset in code. Paths must exist.</summary>
    /// <param name="group">A group kind (see <see cref="DatasetGroupKinds"/>) or one registered by the caller.</param>
    /// <param name="name">The dataset name that YAML <c>dataset_names</c> refer to.</param>
    /// <param name="entry">The dataset's paths.</param>
    /// <returns>This registry.</returns>
    public DatasetInfoRegistry Add(string group, string name, DatasetInfoEntry entry)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(entry);
        var errors = new List<DataConfigException>();
        ValidatePaths(entry, null, $"{group}.{name}", null, errors);
        if (errors.Count > 0) throw errors.Count == 1 ? errors[0] : new DataConfigAggregateException(errors);
        if (!_groups.TryGetValue(group, out var datasets)) _groups[group] = datasets = new(StringComparer.Ordinal);
        datasets[name] = entry;
        return this;
    }

    /// <summary>Looks up a dataset; the error names the registry file and the names that exist.</summary>
    /// <param name="group">The group name.</param>
    /// <param name="name">The dataset name.</param>
    /// <returns>The entry.</returns>
    public DatasetInfoEntry Get(string group, string name)
    {
        if (!_groups.TryGetValue(group, out var datasets))
            throw new DataConfigException(SourceFile, group, $"group '{group}' is not in the dataset registry; it has: {string.Join(", ", _groups.Keys)}.");
        if (!datasets.TryGetValue(name, out var entry))
            throw new DataConfigException(SourceFile, $"{group}.{name}", $"dataset '{name}' is not registered under '{group}'; registered: {string.Join(", ", datasets.Keys)}.");
        return entry;
    }

    /// <summary>Whether the dataset is registered.</summary>
    public bool Contains(string group, string name) => _groups.TryGetValue(group, out var d) && d.ContainsKey(name);

    /// <summary>
    /// Loads a registry file (JSON or YAML): <c>{group: {dataset: {data_dir, parquet_info_path?, jsonl_path?, ...}}}</c>.
    /// All problems are reported together.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="extraGroupKinds">Group names registered by the application besides <see cref="DatasetGroupKinds.All"/>.</param>
    /// <returns>The registry, with every path absolute.</returns>
    /// <exception cref="DataConfigException">One problem.</exception>
    /// <exception cref="DataConfigAggregateException">Several problems.</exception>
    public static DatasetInfoRegistry Load(string path, IEnumerable<string>? extraGroupKinds = null)
    {
        string file = System.IO.Path.GetFullPath(path);
        ConfigNode root = ConfigNode.Load(file);
        var kinds = new HashSet<string>(DatasetGroupKinds.All.Concat(extraGroupKinds ?? []), StringComparer.Ordinal);
        var registry = new DatasetInfoRegistry { SourceFile = file };
        string baseDir = System.IO.Path.GetDirectoryName(file)!;
        foreach (var (group, groupNode) in root.Entries())
        {
            if (!kinds.Contains(group))
            {
                groupNode.Error($"unknown group; known groups are: {string.Join(", ", kinds.Order(StringComparer.Ordinal))} (register custom ones in code).");
                continue;
            }
            var datasets = registry._groups[group] = new(StringComparer.Ordinal);
            foreach (var (name, node) in groupNode.Entries())
            {
                node.RejectUnknownKeys(EntryKeys, "a dataset registry entry");
                if (node.Child("json_dir") is { } jsonDir)
                    jsonDir.Error("'json_dir' is not supported by any dataset type (in the reference it fails with TypeError); remove it.");
                string? dataDir = Resolve(node.Child("data_dir"), baseDir);
                if (dataDir is null && node.IsMapping && node.Child("data_dir") is null) node.Error("'data_dir' is required.");
                var entry = new DatasetInfoEntry
                {
                    DataDir = dataDir ?? string.Empty,
                    ParquetInfoPath = Resolve(node.Child("parquet_info_path"), baseDir),
                    JsonlPath = Resolve(node.Child("jsonl_path"), baseDir),
                    CaptionsPath = Resolve(node.Child("captions_path"), baseDir),
                    NumFiles = NonNegative(node.Child("num_files")),
                    NumTotalSamples = NonNegative(node.Child("num_total_samples")),
                };
                if (group == DatasetGroupKinds.VlmSft && entry.JsonlPath is null && node.IsMapping)
                    node.Error("'jsonl_path' is required for a vlm_sft dataset.");
                if (dataDir is not null) ValidatePaths(entry, file, node.Path, node.Line, root.Errors);
                datasets[name] = entry;
            }
        }
        if (root.Errors.Count == 1) throw root.Errors[0];
        if (root.Errors.Count > 1) throw new DataConfigAggregateException(root.Errors);
        return registry;
    }

    private static string? Resolve(ConfigNode? node, string baseDir)
    {
        if (node?.String() is not { } value) return null;
        if (value.Length == 0)
        {
            node.Error("the path is empty.");
            return null;
        }
        return System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, value));
    }

    private static long? NonNegative(ConfigNode? node)
    {
        if (node?.Integer() is not { } value) return null;
        if (value < 0) node.Error($"must be zero or more, found {value}.");
        return value;
    }

    private static void ValidatePaths(DatasetInfoEntry entry, string? file, string keyPath, int? line, List<DataConfigException> errors)
    {
        if (!Directory.Exists(entry.DataDir))
            errors.Add(new DataConfigException(file, keyPath + ".data_dir", $"folder '{entry.DataDir}' does not exist.", line));
        if (entry.ParquetInfoPath is { } info && !File.Exists(info))
            errors.Add(new DataConfigException(file, keyPath + ".parquet_info_path", $"file '{info}' does not exist (write one with the parquet_info command, or remove the key to read row-group counts from the shards).", line));
        if (entry.JsonlPath is { } jsonl && !File.Exists(jsonl))
            errors.Add(new DataConfigException(file, keyPath + ".jsonl_path", $"file '{jsonl}' does not exist.", line));
        if (entry.CaptionsPath is { } captions && !File.Exists(captions))
            errors.Add(new DataConfigException(file, keyPath + ".captions_path", $"file '{captions}' does not exist.", line));
    }
}
