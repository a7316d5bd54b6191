using System.Globalization;
using Bagel.Core.SafeTensors;
using Bagel.Training.Checkpoints;
using TorchSharp;

namespace Bagel.Training.Sharding;

/// <summary>
/// The files of a sharded checkpoint: whole-model safetensors (<c>model.safetensors</c>, <c>ema.safetensors</c>, the
/// reference's names) streamed to rank 0 one tensor at a time, and one optimizer file per rank
/// (<c>optimizer-shard-RRRRR-of-WWWWW.safetensors</c>: the rank's AdamW moments with the layout in its metadata, so that a
/// run with another world size can re-slice them).
/// </summary>
public static class ShardedStateFiles
{
    /// <summary>Metadata key prefix of an optimizer shard file.</summary>
    public const string MetadataPrefix = "bagel.shard.";

    /// <summary>Format version this build writes and reads.</summary>
    public const int FormatVersion = 1;

    private const string FilePrefix = "optimizer-shard-";

    /// <summary>The optimizer file of <paramref name="rank"/> among <paramref name="worldSize"/> ranks.</summary>
    public static string OptimizerFileName(int rank, int worldSize) =>
        string.Create(CultureInfo.InvariantCulture, $"{FilePrefix}{rank:D5}-of-{worldSize:D5}.safetensors");

    /// <summary>The optimizer shard files in <paramref name="folder"/> (empty when it holds none).</summary>
    public static string[] OptimizerFiles(string folder) =>
        Directory.Exists(folder) ? [.. Directory.GetFiles(folder, FilePrefix + "*.safetensors").Order(StringComparer.Ordinal)] : [];

    /// <summary>
    /// Writes this rank's AdamW state (its shard's moments and step count, the group's settings) and the layout.
    /// </summary>
    public static void SaveOptimizer(ShardedOptimizer sharded, string path, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sharded);
        var dict = sharded.Optimizer.state_dict();
        var state = (TorchSharp.Modules.AdamW.State)dict.State[dict.StateIndexRef[0][0]];
        var options = (TorchSharp.Modules.AdamW.Options)dict.Options[0];
        FlatShardLayout layout = sharded.Layout;
        string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var metadata = new Dictionary<string, string>
        {
            [MetadataPrefix + "format"] = FormatVersion.ToString(CultureInfo.InvariantCulture),
            [MetadataPrefix + "rank"] = sharded.Rank.ToString(CultureInfo.InvariantCulture),
            [MetadataPrefix + "world_size"] = layout.Shards.ToString(CultureInfo.InvariantCulture),
            [MetadataPrefix + "shard_elements"] = layout.ShardElements.ToString(CultureInfo.InvariantCulture),
            [MetadataPrefix + "total_elements"] = layout.TotalElements.ToString(CultureInfo.InvariantCulture),
            [MetadataPrefix + "step"] = state.step.ToString(CultureInfo.InvariantCulture),
            [MetadataPrefix + "lr"] = R(options.LearningRate!.Value),
            [MetadataPrefix + "initial_lr"] = R(options.InitialLearningRate),
            [MetadataPrefix + "beta1"] = R(options.beta1!.Value),
            [MetadataPrefix + "beta2"] = R(options.beta2!.Value),
            [MetadataPrefix + "eps"] = R(options.eps!.Value),
            [MetadataPrefix + "weight_decay"] = R(options.weight_decay!.Value),
            [MetadataPrefix + "tensors"] = DescribeTensors(layout),
        };
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("exp_avg", state.exp_avg), PendingTensor.From("exp_avg_sq", state.exp_avg_sq)], metadata, cancellationToken);
    }

    /// <summary>
    /// Loads this rank's AdamW state from the optimizer shard files in <paramref name="folder"/>, written with any world
    /// size: each saved shard that overlaps this rank's range is read in the overlapping bytes only.
    /// </summary>
    /// <exception cref="CheckpointException">No shard files, files of different runs, or a layout of other tensors.</exception>
    public static void LoadOptimizer(ShardedOptimizer sharded, string folder)
    {
        ArgumentNullException.ThrowIfNull(sharded);
        string[] files = OptimizerFiles(folder);
        if (files.Length == 0)
        {
            string full = Path.Combine(folder, CheckpointLayout.OptimizerFileName);
            throw new CheckpointException(File.Exists(full)
                ? $"{folder} holds a whole-model {CheckpointLayout.OptimizerFileName} (a data-parallel run's); a sharded run reads {FilePrefix}*.safetensors. Resume it with sharding_strategy NO_SHARD, or use resume_model_only."
                : $"{folder} holds no optimizer state ({FilePrefix}*.safetensors).");
        }
        var dict = sharded.Optimizer.state_dict();
        var state = (TorchSharp.Modules.AdamW.State)dict.State[dict.StateIndexRef[0][0]];
        var options = (TorchSharp.Modules.AdamW.Options)dict.Options[0];
        FlatShardLayout mine = sharded.Layout;
        string expectedTensors = DescribeTensors(mine);
        long? step = null;
        int? savedWorld = null;
        using var noGrad = torch.no_grad();
        state.exp_avg.zero_();
        state.exp_avg_sq.zero_();
        foreach (string file in files)
        {
            using SafeTensorsReader reader = SafeTensorsReader.Open(file);
            string Meta(string key) => reader.Metadata.TryGetValue(MetadataPrefix + key, out string? v) ? v
                : throw new CheckpointException($"{file} has no '{MetadataPrefix}{key}' metadata; it is not an optimizer shard of this build.");
            long Long(string key) => long.Parse(Meta(key), CultureInfo.InvariantCulture);
            double Double(string key) => double.Parse(Meta(key), CultureInfo.InvariantCulture);
            if (Long("format") != FormatVersion) throw new CheckpointException($"{file} has optimizer shard format {Meta("format")}; this build reads {FormatVersion}.");
            int world = (int)Long("world_size"), rank = (int)Long("rank");
            if (savedWorld is not null && savedWorld != world) throw new CheckpointException($"{folder} mixes optimizer shards of world sizes {savedWorld} and {world}.");
            savedWorld = world;
            if (Meta("tensors") != expectedTensors)
                throw new CheckpointException($"{file} holds the optimizer state of other trainable tensors than this model's (names or shapes differ). Freeze the same modules as the saved run.");
            long fileStep = Long("step");
            if (step is not null && step != fileStep) throw new CheckpointException($"{folder}: optimizer shards at steps {step} and {fileStep}.");
            step = fileStep;
            var saved = mine.WithShards(world);
            if (Long("shard_elements") != saved.ShardElements) throw new CheckpointException($"{file}: shard of {Meta("shard_elements")} elements, expected {saved.ShardElements}.");
            // The overlap of the saved shard [rank·S', (rank+1)·S') with this rank's [r·S, (r+1)·S), within the real elements.
            long start = Math.Max(saved.ShardStart(rank), mine.ShardStart(sharded.Rank));
            long end = Math.Min(Math.Min(saved.ShardStart(rank) + saved.ShardElements, mine.ShardStart(sharded.Rank) + mine.ShardElements), mine.TotalElements);
            if (end > start)
            {
                ReadRange(reader, file, "exp_avg", start - saved.ShardStart(rank), state.exp_avg, start - mine.ShardStart(sharded.Rank), end - start);
                ReadRange(reader, file, "exp_avg_sq", start - saved.ShardStart(rank), state.exp_avg_sq, start - mine.ShardStart(sharded.Rank), end - start);
            }
            options.LearningRate = Double("lr");
            options.InitialLearningRate = Double("initial_lr");
            options.beta1 = Double("beta1");
            options.beta2 = Double("beta2");
            options.eps = Double("eps");
            options.weight_decay = Double("weight_decay");
        }
        if (savedWorld is int w && files.Length != w)
            throw new CheckpointException($"{folder} holds {files.Length} optimizer shard file(s) of a {w}-rank run; all {w} are needed.");
        state.step = step ?? 0;
    }

    /// <summary>Reads this rank's part of every trainable tensor of a whole-model file into <paramref name="shard"/> (overlapping bytes only).</summary>
    internal static void ReadShard(SafeTensorsReader reader, string path, FlatShardLayout layout, int rank, torch.Tensor shard, Func<string, string?>? keyMap, string role)
    {
        foreach (FlatShardEntry entry in layout.Entries)
        {
            (long inTensor, long inShard, long count) = layout.Overlap(entry, rank);
            if (count == 0) continue;
            string name = keyMap?.Invoke(entry.Name) ?? entry.Name;
            if (!reader.Contains(name)) throw new CheckpointException($"{path} has no tensor '{name}' for the {role} (a trainable tensor of the model).");
            SafeTensorInfo info = reader.GetInfo(name);
            if (!info.Shape.SequenceEqual(entry.Shape))
                throw new CheckpointException($"{path}: tensor '{name}' has shape {info.ShapeText}, the model's is [{string.Join(", ", entry.Shape)}].");
            if (info.DType.ToScalarType() == torch.float32) ReadRange(reader, path, name, inTensor, shard, inShard, count);
            else
            {
                using torch.Tensor whole = reader.ReadTensor(name, torch.float32);
                using torch.Tensor from = whole.reshape(-1).narrow(0, inTensor, count), to = shard.narrow(0, inShard, count);
                to.copy_(from);
            }
        }
    }

    /// <summary>Copies <paramref name="count"/> float32 elements of tensor <paramref name="name"/>, from element <paramref name="from"/>, into <paramref name="destination"/> at <paramref name="to"/>.</summary>
    private static void ReadRange(SafeTensorsReader reader, string path, string name, long from, torch.Tensor destination, long to, long count)
    {
        if (!reader.Contains(name)) throw new CheckpointException($"{path} has no tensor '{name}'.");
        const long Piece = 1 << 24; // 64 MiB of float32 per read
        using torch.Tensor staging = torch.empty(Math.Min(count, Piece), torch.float32);
        for (long done = 0; done < count; done += Piece)
        {
            long n = Math.Min(Piece, count - done);
            using torch.Tensor part = staging.narrow(0, 0, n);
            reader.CopyBytesTo(name, part.bytes, (from + done) * sizeof(float));
            using torch.Tensor target = destination.narrow(0, to + done, n);
            target.copy_(part);
        }
    }

    private static string DescribeTensors(FlatShardLayout layout) =>
        string.Join(";", layout.Entries.Select(e => $"{e.Name}:{string.Join(",", e.Shape)}"));
}
