using System.Diagnostics;
using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>Argument checks shared by the backends, and the polling wait that enforces a collective's timeout.</summary>
internal static class CollectiveChecks
{
    public static void Tensor(torch.Tensor tensor, string name, string backend, int rank, bool cuda)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        if (!tensor.is_contiguous())
            throw new ArgumentException($"{backend}: rank {rank}: the {name} tensor is not contiguous (shape [{string.Join(", ", tensor.shape)}]); call .contiguous() first.", name);
        bool isCuda = tensor.device.type == DeviceType.CUDA;
        if (isCuda != cuda)
            throw new ArgumentException($"{backend}: rank {rank}: the {name} tensor is on {tensor.device}, but this backend works on {(cuda ? "CUDA" : "CPU")} tensors.", name);
    }

    public static void Sizes(torch.Tensor chunk, torch.Tensor full, int worldSize, string operation, string backend, int rank)
    {
        if (full.dtype != chunk.dtype)
            throw new ArgumentException($"{backend}: rank {rank}: {operation} needs one dtype; got {chunk.dtype} and {full.dtype}.");
        if (full.numel() != chunk.numel() * worldSize)
            throw new ArgumentException($"{backend}: rank {rank}: {operation} needs the full buffer to hold world size ({worldSize}) × the chunk's {chunk.numel()} elements; it has {full.numel()}.");
    }

    public static void Root(int root, int worldSize, string backend, int rank)
    {
        if (root < 0 || root >= worldSize)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"{backend}: rank {rank}: broadcast root {root} is outside world size {worldSize}.");
    }

    /// <summary>
    /// Polls <paramref name="done"/> until it returns true or <paramref name="timeout"/> passes (then returns false): a
    /// short spin, then yields for up to a second, then bursts of 32 polls (with yields) between 1 ms sleeps, so that a
    /// rank waiting long (for a checkpoint being written) takes little of a core from the others. Open MPI's non-blocking
    /// collectives progress only inside <c>MPI_Test</c>: the first second polls without sleeping, and the bursts keep a
    /// large transfer moving after a long wait for a peer (one poll per millisecond moved a 114 MiB broadcast at about
    /// 80 MB/s).
    /// </summary>
    public static bool Poll(Func<bool> done, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; ; i++)
        {
            if (done()) return true;
            if (clock.Elapsed >= timeout) return false;
            if (i < 64) Thread.SpinWait(32);
            else if (clock.ElapsedMilliseconds < 1000 || i % 32 != 0) Thread.Yield();
            else Thread.Sleep(1); // a long wait: a burst of 32 polls per millisecond (each poll moves a large transfer on)
        }
    }
}
