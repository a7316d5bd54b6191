using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>
/// The process group of a single process (rank 0 of 1), the default: every collective leaves its tensor as it is
/// (the reduction of one rank is its value), <see cref="ReduceScatter"/> and <see cref="AllGather"/> copy.
/// </summary>
public sealed class SingleProcessGroup : IProcessGroup
{
    /// <summary>The shared instance.</summary>
    public static SingleProcessGroup Instance { get; } = new();

    /// <inheritdoc />
    public int Rank => 0;

    /// <inheritdoc />
    public int WorldSize => 1;

    /// <inheritdoc />
    public int LocalRank => 0;

    /// <inheritdoc />
    public int LocalWorldSize => 1;

    /// <inheritdoc />
    public string Backend => "single";

    /// <inheritdoc />
    public TimeSpan Timeout => System.Threading.Timeout.InfiniteTimeSpan;

    /// <inheritdoc />
    public void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum) => ArgumentNullException.ThrowIfNull(tensor);

    /// <inheritdoc />
    public void ReduceScatter(torch.Tensor input, torch.Tensor output, ReduceOp op = ReduceOp.Sum) => Copy(input, output, "reduce-scatter");

    /// <inheritdoc />
    public void AllGather(torch.Tensor input, torch.Tensor output) => Copy(input, output, "all-gather");

    /// <inheritdoc />
    public void Broadcast(torch.Tensor tensor, int root = 0)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        CollectiveChecks.Root(root, 1, Backend, 0);
    }

    /// <inheritdoc />
    public void Barrier()
    {
    }

    /// <summary>The only sub-group of one rank is itself: returns <see cref="Instance"/> (disposing it does nothing).</summary>
    /// <param name="color">The sub-group to join, 0 or more.</param>
    /// <param name="key">Ignored (one rank).</param>
    /// <returns><see cref="Instance"/>.</returns>
    public IProcessGroup Split(int color, int key)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(color);
        return Instance;
    }

    /// <summary>Nothing to release.</summary>
    public void Dispose()
    {
    }

    private void Copy(torch.Tensor from, torch.Tensor to, string operation)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        CollectiveChecks.Sizes(from, to, 1, operation, Backend, 0);
        if (from.Handle == to.Handle) return;
        using var noGrad = torch.no_grad();
        using torch.Tensor view = from.reshape(to.shape);
        to.copy_(view);
    }
}
