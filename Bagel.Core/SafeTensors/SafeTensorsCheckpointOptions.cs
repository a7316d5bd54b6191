namespace Bagel.Core.SafeTensors;

/// <summary>How <see cref="SafeTensorsCheckpoint.Write"/> lays a checkpoint out on disk.</summary>
public sealed class SafeTensorsCheckpointOptions
{
    /// <summary>Hugging Face's default max_shard_size ("5GB", decimal) in bytes.</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    /// <summary>
    /// Largest shard in bytes of tensor data (default <see cref="DefaultMaxShardBytes"/>). A tensor larger than
    /// this gets a shard of its own.
    /// </summary>
    public long MaxShardBytes { get; init; } = DefaultMaxShardBytes;

    /// <summary>Write an index even when everything fits one shard (default false: a single model.safetensors).</summary>
    public bool AlwaysIndex { get; init; }

    /// <summary>File name stem (default "model": model.safetensors, model-00001-of-00002.safetensors, model.safetensors.index.json).</summary>
    public string BaseName { get; init; } = "model";

    /// <summary>String metadata written into every shard's "__metadata__" (default none).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming every invalid value.</summary>
    public void Validate()
    {
        var problems = new List<string>();
        if (MaxShardBytes <= 0) problems.Add($"MaxShardBytes must be positive (was {MaxShardBytes}).");
        if (string.IsNullOrWhiteSpace(BaseName) || BaseName.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || BaseName.Contains('/'))
            problems.Add($"BaseName must be a plain file name stem (was '{BaseName}').");
        if (problems.Count > 0)
            throw new ArgumentException("Invalid SafeTensorsCheckpointOptions: " + string.Join(" ", problems));
    }
}
