using TorchSharp;

namespace Bagel.Core.SafeTensors;

/// <summary>
/// One view over a sharded checkpoint described by <c>model.safetensors.index.json</c>. Opening reads the index
/// and every shard's header (no tensor data) and checks that each tensor the index lists is in its shard.
/// </summary>
public sealed class ShardedSafeTensorsReader : ISafeTensorsSource
{
    private readonly Dictionary<string, SafeTensorsReader> _shardByTensor;
    private readonly List<SafeTensorsReader> _shards;
    private readonly Dictionary<string, SafeTensorInfo> _byName;

    private ShardedSafeTensorsReader(string indexPath, IReadOnlyDictionary<string, string> metadata, List<SafeTensorsReader> shards,
        Dictionary<string, SafeTensorsReader> shardByTensor, List<SafeTensorInfo> tensors)
    {
        Location = indexPath;
        Metadata = metadata;
        _shards = shards;
        _shardByTensor = shardByTensor;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <inheritdoc />
    public string Location { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <inheritdoc />
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The shard files, in the order they were opened (sorted by file name).</summary>
    public IReadOnlyList<string> ShardPaths => [.. _shards.Select(s => s.Location)];

    /// <summary>Opens an index file and the shards it names.</summary>
    /// <param name="indexPath">The <c>*.safetensors.index.json</c> file.</param>
    /// <exception cref="FileNotFoundException">The index does not exist.</exception>
    /// <exception cref="SafeTensorsFormatException">
    /// The index is malformed, names a shard that does not exist, or lists a tensor its shard does not hold
    /// (the message names the index, the shard and the tensor); or a shard is malformed.
    /// </exception>
    public static ShardedSafeTensorsReader Open(string indexPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(indexPath);
        string fullPath = Path.GetFullPath(indexPath);
        if (!File.Exists(fullPath))
            throw new FileNotFoundException($"The sharded checkpoint index '{fullPath}' does not exist.", fullPath);
        SafeTensorsIndexFile.Parsed index = SafeTensorsIndexFile.Read(fullPath);
        string folder = Path.GetDirectoryName(fullPath)!;

        var shards = new List<SafeTensorsReader>();
        try
        {
            var readerByFile = new Dictionary<string, SafeTensorsReader>(StringComparer.Ordinal);
            foreach (IGrouping<string, string> group in index.WeightMap.GroupBy(p => p.Value, p => p.Key).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                string shardPath = Path.Combine(folder, group.Key);
                if (!File.Exists(shardPath))
                    throw new SafeTensorsFormatException(fullPath, group.First(), SafeTensorsIndexFile.WeightMapKey,
                        $"the shard '{shardPath}' it names does not exist ({group.Count()} tensors are mapped to it).");
                var reader = SafeTensorsReader.Open(shardPath);
                shards.Add(reader);
                readerByFile[group.Key] = reader;
            }

            var shardByTensor = new Dictionary<string, SafeTensorsReader>(StringComparer.Ordinal);
            var tensors = new List<SafeTensorInfo>();
            foreach (SafeTensorsReader shard in shards)
            {
                foreach (SafeTensorInfo info in shard.Tensors)
                {
                    // Tensors a shard holds but the index does not list are not part of the checkpoint.
                    if (index.WeightMap.TryGetValue(info.Name, out string? file) && readerByFile[file] == shard)
                    {
                        tensors.Add(info);
                        shardByTensor[info.Name] = shard;
                    }
                }
            }
            foreach (KeyValuePair<string, string> pair in index.WeightMap)
            {
                if (!shardByTensor.ContainsKey(pair.Key))
                    throw new SafeTensorsFormatException(fullPath, pair.Key, SafeTensorsIndexFile.WeightMapKey,
                        $"the index maps it to '{pair.Value}', but that shard does not hold it.");
            }
            return new ShardedSafeTensorsReader(fullPath, index.Metadata, shards, shardByTensor, tensors);
        }
        catch
        {
            foreach (SafeTensorsReader shard in shards) shard.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <inheritdoc />
    public SafeTensorInfo GetInfo(string name) =>
        _byName.TryGetValue(name, out SafeTensorInfo? info) ? info : throw new SafeTensorNotFoundException(Location, name);

    /// <summary>The shard file holding a tensor.</summary>
    /// <param name="name">The tensor's key.</param>
    public string ShardOf(string name) => Shard(name).Location;

    /// <inheritdoc />
    public torch.Tensor ReadTensor(string name, torch.ScalarType? dtype = null, torch.Device? device = null) =>
        Shard(name).ReadTensor(name, dtype, device);

    /// <inheritdoc />
    public void CopyInto(string name, torch.Tensor destination) => Shard(name).CopyInto(name, destination);

    /// <inheritdoc />
    public void CopyBytesTo(string name, Span<byte> destination, long sourceOffset = 0) =>
        Shard(name).CopyBytesTo(name, destination, sourceOffset);

    /// <summary>Closes every shard.</summary>
    public void Dispose()
    {
        foreach (SafeTensorsReader shard in _shards) shard.Dispose();
    }

    private SafeTensorsReader Shard(string name) =>
        _shardByTensor.TryGetValue(name, out SafeTensorsReader? shard) ? shard : throw new SafeTensorNotFoundException(Location, name);
}
