using System.Text;
using Bagel.Core.Distributed;
using Bagel.Core.SafeTensors;
using Bagel.Training.Checkpoints;
using TorchSharp;

namespace Bagel.Training.Sharding;

/// <summary>
/// Saves a sharded run's weights with every rank taking part, one tensor at a time:
/// <list type="number">
/// <item>rank 0 creates the checkpoint's temp folder (<see cref="CheckpointWriter"/>) and tells the others its path;
/// every rank of rank 0's shard group writes its own optimizer shard file there (<see cref="ShardedStateFiles"/>;
/// under hybrid sharding the other shard groups hold copies and only wait);</item>
/// <item><c>model.safetensors</c> and <c>ema.safetensors</c> (the reference's names and layout): every rank walks the
/// state dict's keys in file order; for each trainable tensor all ranks assemble it from their shards
/// (<see cref="ShardedOptimizer"/>'s gather) and rank 0 streams it to the file and frees it before the next, so no rank
/// ever holds more than one whole tensor of them (<see cref="PeakGatheredBytes"/> measures it);</item>
/// <item>a barrier (every shard file is on disk), then rank 0 writes the small files and renames the folder, and a
/// second barrier returns every rank after the rename.</item>
/// </list>
/// A rank that dies in between leaves only the temp folder, which discovery ignores; the previous checkpoint stays.
/// The ranks must share the checkpoint folder (one machine, or a shared file system as the reference assumes).
/// </summary>
public sealed class ShardedCheckpoint : IShardedCheckpointState
{
    private readonly ShardedOptimizer _sharded;
    private readonly torch.nn.Module _module;
    private readonly List<(torch.Tensor Tensor, long Bytes)> _live = [];
    private long _liveBytes;

    /// <summary>Creates the checkpoint glue for <paramref name="sharded"/>'s run of <paramref name="module"/>.</summary>
    public ShardedCheckpoint(ShardedOptimizer sharded, torch.nn.Module module)
    {
        _sharded = sharded ?? throw new ArgumentNullException(nameof(sharded));
        _module = module ?? throw new ArgumentNullException(nameof(module));
    }

    /// <summary>
    /// Test seam, process-wide: called on every rank with the step and the rank after it wrote its optimizer shard file
    /// into the temp folder. The SIGKILL test kills one rank there; null in normal runs.
    /// </summary>
    internal static Action<long, int>? ShardWrittenHook { get; set; }

    /// <summary>The most bytes of gathered whole tensors this rank held at once during the saves so far (measured: gathered tensors not yet freed).</summary>
    public long PeakGatheredBytes { get; private set; }

    /// <inheritdoc />
    public IReadOnlyList<CheckpointPart> WeightParts(long completedSteps) =>
    [
        new(ShardedStateFiles.OptimizerFileName(0, _sharded.ShardGroup.WorldSize), (path, ct) =>
        {
            string folder = Path.GetDirectoryName(path)!;
            _sharded.Group.AllGatherBytes(Encoding.UTF8.GetBytes(folder));
            ShardedStateFiles.SaveOptimizer(_sharded, path, ct);
            ShardWrittenHook?.Invoke(completedSteps, 0);
        }),
        new(CheckpointLayout.ModelFileName, (path, _) => WriteGathered(path, _sharded.Master)),
        new(CheckpointLayout.EmaFileName, (path, _) =>
        {
            WriteGathered(path, _sharded.Ema.Shard);
            _sharded.Group.Barrier(); // every rank's optimizer shard is on disk before the folder is committed
        }),
    ];

    /// <summary>
    /// What every rank but 0 does while rank 0 runs <see cref="WeightParts"/>: receives the temp folder, writes its
    /// optimizer shard there, and takes part in the gathers of the model and the EMA, in the same order.
    /// </summary>
    /// <param name="completedSteps">The checkpoint's step.</param>
    public void FollowSave(long completedSteps)
    {
        if (_sharded.Group.Rank == 0) throw new InvalidOperationException("Rank 0 writes the checkpoint; the other ranks follow.");
        byte[][] all = _sharded.Group.AllGatherBytes([]);
        string folder = Encoding.UTF8.GetString(all[0]);
        if (_sharded.IsFirstReplica)
        {
            // Rank 0's shard group writes the optimizer files and gathers the tensors for rank 0; the other replicas hold
            // copies of the same shards and have nothing to do until the barrier.
            ShardedStateFiles.SaveOptimizer(_sharded, Path.Combine(folder, ShardedStateFiles.OptimizerFileName(_sharded.Rank, _sharded.ShardGroup.WorldSize)));
            ShardWrittenHook?.Invoke(completedSteps, _sharded.Group.Rank);
            WriteGathered(null, _sharded.Master);
            WriteGathered(null, _sharded.Ema.Shard);
        }
        _sharded.Group.Barrier();
    }

    /// <inheritdoc />
    public void LoadOptimizerState(string folder) => ShardedStateFiles.LoadOptimizer(_sharded, folder);

    /// <summary>
    /// Rank 0 (<paramref name="path"/> given) streams the module's state dict to <paramref name="path"/>, trainable
    /// tensors assembled from <paramref name="shard"/>; the other ranks (null) take part in the same gathers. Not
    /// cancellable between tensors: the ranks must stay in step.
    /// </summary>
    private void WriteGathered(string? path, torch.Tensor shard)
    {
        Dictionary<string, FlatShardEntry> trainable = _sharded.Layout.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        if (path is null)
        {
            foreach ((string key, torch.Tensor _) in _module.state_dict().OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (!trainable.TryGetValue(key, out FlatShardEntry? entry)) continue;
                using torch.Tensor gathered = Track(_sharded.Gather(entry, shard));
            }
            Release();
            return;
        }
        var pending = new List<PendingTensor>();
        foreach ((string key, torch.Tensor tensor) in _module.state_dict())
        {
            pending.Add(trainable.TryGetValue(key, out FlatShardEntry? entry)
                ? new PendingTensor(new SafeTensorsEntry(key, SafeTensorDType.F32, entry.Shape), () => Track(_sharded.Gather(entry, shard)))
                : PendingTensor.From(key, tensor));
        }
        SafeTensorsWriter.WriteFile(path, pending);
        Release();
    }

    /// <summary>Counts <paramref name="gathered"/> with the gathered tensors still alive (the writer frees each after writing it).</summary>
    private torch.Tensor Track(torch.Tensor gathered)
    {
        for (int i = _live.Count - 1; i >= 0; i--)
        {
            if (!_live[i].Tensor.IsInvalid) continue;
            _liveBytes -= _live[i].Bytes;
            _live.RemoveAt(i);
        }
        long bytes = gathered.numel() * sizeof(float);
        _live.Add((gathered, bytes));
        _liveBytes += bytes;
        PeakGatheredBytes = Math.Max(PeakGatheredBytes, _liveBytes);
        return gathered;
    }

    private void Release()
    {
        _live.Clear();
        _liveBytes = 0;
    }
}
