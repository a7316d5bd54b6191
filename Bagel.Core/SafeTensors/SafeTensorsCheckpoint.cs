using System.Globalization;

namespace Bagel.Core.SafeTensors;

/// <summary>
/// Opens and writes Hugging Face style checkpoints: a single <c>model.safetensors</c>, or shards named
/// <c>model-00001-of-00003.safetensors</c> with <c>model.safetensors.index.json</c>.
/// </summary>
public static class SafeTensorsCheckpoint
{
    /// <summary>The suffix of a sharded checkpoint's index file.</summary>
    public const string IndexSuffix = ".safetensors.index.json";

    /// <summary>
    /// Opens a checkpoint: a .safetensors file, an index file, or a folder holding <c>model.safetensors.index.json</c>
    /// (preferred) or <c>model.safetensors</c>.
    /// </summary>
    /// <param name="path">File or folder.</param>
    /// <param name="baseName">File name stem looked for in a folder (default "model").</param>
    /// <exception cref="FileNotFoundException">Nothing to open at <paramref name="path"/>.</exception>
    /// <exception cref="SafeTensorsFormatException">A file is malformed.</exception>
    public static ISafeTensorsSource Open(string path, string baseName = "model")
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            string index = Path.Combine(path, baseName + IndexSuffix);
            if (File.Exists(index)) return ShardedSafeTensorsReader.Open(index);
            string single = Path.Combine(path, baseName + ".safetensors");
            if (File.Exists(single)) return SafeTensorsReader.Open(single);
            throw new FileNotFoundException($"The folder '{Path.GetFullPath(path)}' holds neither '{baseName}{IndexSuffix}' nor '{baseName}.safetensors'.");
        }
        return path.EndsWith(".index.json", StringComparison.Ordinal) ? ShardedSafeTensorsReader.Open(path) : SafeTensorsReader.Open(path);
    }

    /// <summary>The HF shard name, e.g. <c>model-00001-of-00003.safetensors</c> (1-based).</summary>
    /// <param name="baseName">File name stem.</param>
    /// <param name="shard">1-based shard number.</param>
    /// <param name="count">Number of shards.</param>
    public static string ShardFileName(string baseName, int shard, int count) =>
        string.Create(CultureInfo.InvariantCulture, $"{baseName}-{shard:D5}-of-{count:D5}.safetensors");

    /// <summary>
    /// Writes a checkpoint into <paramref name="folder"/>, one tensor in memory at a time. Tensors are sorted by name
    /// and cut into shards of at most <see cref="SafeTensorsCheckpointOptions.MaxShardBytes"/>; one shard without
    /// <see cref="SafeTensorsCheckpointOptions.AlwaysIndex"/> is written as a single file. Files are written into a
    /// hidden temp folder inside <paramref name="folder"/> and moved into place only when all are complete (the
    /// index last); on failure the temp folder is deleted and <paramref name="folder"/> is left as it was. Stale
    /// files of an earlier checkpoint with the same stem (other shard sets, the other layout) are removed.
    /// </summary>
    /// <param name="folder">Destination folder (created if needed).</param>
    /// <param name="tensors">The tensors; each producer runs once.</param>
    /// <param name="options">Layout options; null uses the defaults.</param>
    /// <param name="cancellationToken">Checked between tensors.</param>
    /// <returns>The path to open the checkpoint with: the index file, or the single file.</returns>
    public static string Write(string folder, IEnumerable<PendingTensor> tensors, SafeTensorsCheckpointOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(tensors);
        options ??= new SafeTensorsCheckpointOptions();
        options.Validate();
        string destination = Path.GetFullPath(folder);
        Directory.CreateDirectory(destination);

        List<PendingTensor> sorted = [.. tensors.OrderBy(t => t.Entry.Name, StringComparer.Ordinal)];
        List<List<PendingTensor>> shards = PlanShards(sorted, options.MaxShardBytes);
        bool sharded = shards.Count > 1 || options.AlwaysIndex;

        string staging = Path.Combine(destination, $".{options.BaseName}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(staging);
        try
        {
            var finalNames = new List<string>();
            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < shards.Count; i++)
            {
                string name = sharded ? ShardFileName(options.BaseName, i + 1, shards.Count) : options.BaseName + ".safetensors";
                SafeTensorsWriter.WriteFile(Path.Combine(staging, name), shards[i], options.Metadata, cancellationToken);
                foreach (PendingTensor tensor in shards[i]) weightMap[tensor.Entry.Name] = name;
                finalNames.Add(name);
            }
            if (sharded)
            {
                string indexName = options.BaseName + IndexSuffix;
                long totalSize = sorted.Sum(t => t.Entry.ByteLength);
                File.WriteAllBytes(Path.Combine(staging, indexName), SafeTensorsIndexFile.Serialize(totalSize, weightMap));
                finalNames.Add(indexName);
            }
            cancellationToken.ThrowIfCancellationRequested();

            RemoveStaleFiles(destination, options.BaseName, finalNames);
            foreach (string name in finalNames)
                File.Move(Path.Combine(staging, name), Path.Combine(destination, name), overwrite: true);
            return Path.Combine(destination, finalNames[^1]);
        }
        finally
        {
            AtomicFile.TryDelete(staging);
        }
    }

    /// <summary>Greedy, in name order: a new shard starts when the next tensor would push the current one past the limit.</summary>
    private static List<List<PendingTensor>> PlanShards(List<PendingTensor> sorted, long maxShardBytes)
    {
        var shards = new List<List<PendingTensor>> { new() };
        long currentBytes = 0;
        foreach (PendingTensor tensor in sorted)
        {
            long size = tensor.Entry.ByteLength;
            if (shards[^1].Count > 0 && currentBytes + size > maxShardBytes)
            {
                shards.Add([]);
                currentBytes = 0;
            }
            shards[^1].Add(tensor);
            currentBytes += size;
        }
        return shards;
    }

    private static void RemoveStaleFiles(string destination, string baseName, List<string> keep)
    {
        var stale = Directory.EnumerateFiles(destination, baseName + "-?????-of-?????.safetensors")
            .Append(Path.Combine(destination, baseName + IndexSuffix))
            .Append(Path.Combine(destination, baseName + ".safetensors"))
            .Where(path => File.Exists(path) && !keep.Contains(Path.GetFileName(path), StringComparer.Ordinal));
        // The old index goes first, so that no moment shows an index naming shards that are gone.
        foreach (string path in stale.OrderBy(p => p.EndsWith(IndexSuffix, StringComparison.Ordinal) ? 0 : 1))
            File.Delete(path);
    }
}
