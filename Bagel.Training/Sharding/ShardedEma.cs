using Bagel.Core.SafeTensors;
using Bagel.Training.Checkpoints;
using Bagel.Training.Ema;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Training.Sharding;

/// <summary>
/// The EMA of one rank's shard of the flat trainable parameters (<see cref="ShardedOptimizer"/>):
/// <c>ema = decay·ema + (1−decay)·master</c> over the rank's S elements, the same element-wise operations as the
/// data-parallel EMA, so the same values. The whole EMA never exists on one rank: <see cref="LoadWeights"/> reads only
/// this rank's part of each tensor from <c>ema.safetensors</c>, and the checkpoint's <c>ema.safetensors</c> is streamed to
/// rank 0 one tensor at a time (<see cref="ShardedCheckpoint"/>). Only trainable tensors are averaged; the file's
/// other entries (buffers, frozen weights) are the live model's, which the EMA copy of a data-parallel run holds too.
/// </summary>
public sealed class ShardedEma : IExponentialMovingAverage, IDisposable
{
    private readonly ShardedOptimizer _owner;

    internal ShardedEma(ShardedOptimizer owner, double decay)
    {
        _owner = owner;
        Decay = decay;
        using var noGrad = torch.no_grad();
        Shard = owner.Master.detach().clone().DetachFromDisposeScope();
    }

    /// <inheritdoc />
    public double Decay { get; }

    /// <summary>This rank's EMA elements (the master shard's layout).</summary>
    public torch.Tensor Shard { get; }

    /// <summary>Whether the shard was loaded from a file (otherwise it starts as the weights).</summary>
    public bool Loaded { get; private set; }

    /// <inheritdoc />
    public int Update()
    {
        using var noGrad = torch.no_grad();
        using torch.Tensor master = _owner.Master.detach();
        Shard.mul_(Decay).add_(master, alpha: 1.0 - Decay);
        return _owner.Layout.Entries.Count(e => _owner.Layout.Overlap(e, _owner.Rank).Count > 0);
    }

    /// <summary>
    /// Not available: the sharded EMA is written by every rank together with the checkpoint (<see cref="ShardedCheckpoint"/>).
    /// </summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public void Save(string path, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("The sharded EMA is written by all ranks together with the checkpoint (ShardedCheckpoint); it cannot be saved by one rank.");

    /// <summary>
    /// Reads this rank's part of every trainable tensor from <paramref name="path"/> (a whole-model
    /// <c>ema.safetensors</c>, as the reference writes it): only the overlapping bytes are read, so no rank holds the whole EMA.
    /// </summary>
    /// <exception cref="CheckpointException">A trainable tensor is missing or misshapen in the file.</exception>
    public void LoadWeights(string path, Func<string, string?>? keyMap = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new CheckpointException($"EMA weights {path} do not exist.");
        using SafeTensorsReader reader = SafeTensorsReader.Open(path);
        using var noGrad = torch.no_grad();
        ShardedStateFiles.ReadShard(reader, path, _owner.Layout, _owner.Rank, Shard, keyMap, "EMA");
        Loaded = true;
    }

    /// <summary>Releases the shard.</summary>
    public void Dispose() => Shard.Dispose();
}
