using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>The reduction of a collective.</summary>
public enum ReduceOp
{
    /// <summary>Element-wise sum over ranks.</summary>
    Sum,

    /// <summary>Element-wise mean over ranks (the sum divided by the world size).</summary>
    Avg,

    /// <summary>Element-wise maximum over ranks.</summary>
    Max,
}

/// <summary>
/// The ranks of one training job and the collectives between them (<c>torch.distributed</c>'s process group, reduced
/// to what data-parallel and sharded training need). Every rank calls the same collectives in the same order with
/// tensors of the same shape and dtype; each call blocks until it completes on this rank or <see cref="Timeout"/>
/// passes, which throws <see cref="CollectiveTimeoutException"/> naming the rank(s) it waited for.
/// </summary>
/// <remarks>
/// Tensors must be contiguous and on the device the backend serves (CPU for MPI, CUDA for NCCL). The operations work
/// in place or into a caller-given output so that flat buffers (gradient buckets, parameter shards) can be reused.
/// <see cref="ReduceScatter"/> and <see cref="AllGather"/> split a flat buffer into <see cref="WorldSize"/> equal,
/// rank-ordered chunks: chunk r is rank r's shard, which is what a sharded (FSDP-like) optimizer builds on.
/// </remarks>
public interface IProcessGroup : IDisposable
{
    /// <summary>This process's rank, 0 to <see cref="WorldSize"/> − 1 (torchrun's <c>RANK</c>).</summary>
    int Rank { get; }

    /// <summary>The number of processes in the job (torchrun's <c>WORLD_SIZE</c>).</summary>
    int WorldSize { get; }

    /// <summary>This process's rank among those on its machine (torchrun's <c>LOCAL_RANK</c>; picks the GPU).</summary>
    int LocalRank { get; }

    /// <summary>The number of processes on this machine (torchrun's <c>LOCAL_WORLD_SIZE</c>).</summary>
    int LocalWorldSize { get; }

    /// <summary>The backend's name: <c>single</c>, <c>mpi</c> or <c>nccl</c>.</summary>
    string Backend { get; }

    /// <summary>How long one collective may wait for the other ranks before it throws.</summary>
    TimeSpan Timeout { get; }

    /// <summary>Reduces <paramref name="tensor"/> over all ranks, in place: afterwards every rank holds the result.</summary>
    /// <param name="tensor">A contiguous tensor, the same shape and dtype on every rank.</param>
    /// <param name="op">The reduction (default sum).</param>
    void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum);

    /// <summary>
    /// Reduces <paramref name="input"/> over all ranks and leaves chunk <see cref="Rank"/> of the result in
    /// <paramref name="output"/>: <c>input.numel() == output.numel() · WorldSize</c>, chunks in rank order.
    /// </summary>
    /// <param name="input">The full contiguous buffer (not changed).</param>
    /// <param name="output">This rank's chunk of the reduction (written).</param>
    /// <param name="op">The reduction (default sum).</param>
    void ReduceScatter(torch.Tensor input, torch.Tensor output, ReduceOp op = ReduceOp.Sum);

    /// <summary>
    /// Concatenates every rank's <paramref name="input"/> in rank order into <paramref name="output"/>:
    /// <c>output.numel() == input.numel() · WorldSize</c>.
    /// </summary>
    /// <param name="input">This rank's chunk.</param>
    /// <param name="output">The full buffer (written on every rank).</param>
    void AllGather(torch.Tensor input, torch.Tensor output);

    /// <summary>Copies <paramref name="tensor"/> of rank <paramref name="root"/> into the same tensor of every other rank.</summary>
    /// <param name="tensor">A contiguous tensor, the same shape and dtype on every rank.</param>
    /// <param name="root">The rank whose values are sent (default 0).</param>
    void Broadcast(torch.Tensor tensor, int root = 0);

    /// <summary>Returns once every rank has called it (or throws after <see cref="Timeout"/>).</summary>
    void Barrier();

    /// <summary>
    /// Splits this group into disjoint sub-groups (like <c>MPI_Comm_split</c>): the ranks that pass the same
    /// <paramref name="color"/> form one sub-group, ranked by <paramref name="key"/> and then by their rank here. A
    /// collective: every rank calls it, in the same order relative to the other collectives. The sub-group's
    /// collectives work as this group's (same backend, device, timeout and error handling) over its ranks only;
    /// <see cref="Rank"/> and <see cref="WorldSize"/> are within the sub-group, <see cref="LocalRank"/> and
    /// <see cref="LocalWorldSize"/> stay this process's (they place it on its machine and pick its GPU). Dispose
    /// sub-groups before this group. See <see cref="SubGroupExtensions.CreateHybridShardGroups"/> for hybrid sharding.
    /// </summary>
    /// <param name="color">The sub-group to join, 0 or more.</param>
    /// <param name="key">Orders the ranks within the sub-group.</param>
    /// <returns>This rank's sub-group (the caller disposes it).</returns>
    /// <exception cref="NotSupportedException">The backend cannot make sub-groups (the default for implementations
    /// that do not override this).</exception>
    IProcessGroup Split(int color, int key) =>
        throw new NotSupportedException($"{Backend}: rank {Rank}: this process group ({GetType().Name}) cannot be split into sub-groups.");
}
