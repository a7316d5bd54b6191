using System.Runtime.InteropServices;
using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>
/// A process group over NVIDIA's NCCL (<c>libnccl.so.2</c>, P/Invoked) on CUDA tensors, for processes started by
/// torchrun (or Bagel.Train's <c>--nproc_per_node</c>), SLURM or mpirun. Rank 0 makes NCCL's unique id and sends it
/// over <see cref="TcpRendezvous"/> at <c>MASTER_ADDR:MASTER_PORT</c>; each rank uses GPU <see cref="LocalRank"/>.
/// Collectives are enqueued on CUDA's legacy default stream (stream 0): TorchSharp does not expose libtorch's current
/// stream, and libtorch runs its kernels on the default stream unless a program switches streams, which Bagel does not.
/// Each call then waits for the stream, polling <c>cudaStreamQuery</c> and <c>ncclCommGetAsyncError</c>, and aborts
/// the communicator after <see cref="Timeout"/>.
/// </summary>
/// <remarks>Untested on a GPU in this repository's CI (no GPU there); its dtype mapping, pointer arithmetic, rendezvous
/// and library probe are unit-tested. <see cref="Split"/> (<c>ncclCommSplit</c>, NCCL 2.18 and later) is untested too.</remarks>
public sealed unsafe class NcclProcessGroup : IProcessGroup
{
    [StructLayout(LayoutKind.Sequential, Size = 128)]
    private struct UniqueId
    {
        public fixed byte Internal[128];
    }

    private const int CudaErrorNotReady = 600;
    private readonly IntPtr _comm;
    private readonly PeerTable _peers;
    private readonly object _gate = new();
    private readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> _allReduce;
    private readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> _reduceScatter;
    private readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, IntPtr, IntPtr, int> _allGather;
    private readonly delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int> _broadcast;
    private readonly delegate* unmanaged<IntPtr, int*, int> _asyncError;
    private readonly delegate* unmanaged<IntPtr, int> _abort;
    private readonly delegate* unmanaged<IntPtr, int> _destroy;
    private readonly delegate* unmanaged<int, IntPtr> _errorString;
    private readonly delegate* unmanaged<IntPtr, int> _streamQuery;
    private readonly delegate* unmanaged<IntPtr, int, int, IntPtr*, IntPtr, int> _split;
    private readonly string _label;
    private long _sequence;
    private bool _failed, _disposed;
    private torch.Tensor? _barrier;

    /// <summary>Loads NCCL and the CUDA runtime, runs the rendezvous and creates the communicator.</summary>
    /// <param name="launch">Rank, world, local rank and the rendezvous address.</param>
    /// <param name="timeout">How long a collective (and the rendezvous) may wait (default 10 minutes).</param>
    /// <exception cref="DistributedException">NCCL or the CUDA runtime is missing (the message says what to install), or the rendezvous failed.</exception>
    public NcclProcessGroup(LaunchEnvironment launch, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(launch);
        Timeout = timeout ?? ProcessGroupOptions.DefaultTimeout;
        string library = Environment.GetEnvironmentVariable("BAGEL_NCCL_LIBRARY") is { Length: > 0 } custom ? custom : NcclProbe.FileName;
        if (!NcclProbe.TryLoad(library, out IntPtr nccl, out string? error)) throw new DistributedException(error!);
        IntPtr cudart = LoadCudaRuntime();
        Rank = launch.Rank;
        WorldSize = launch.WorldSize;
        LocalRank = launch.LocalRank;
        LocalWorldSize = launch.LocalWorldSize;
        var setDevice = (delegate* unmanaged<int, int>)NativeLibrary.GetExport(cudart, "cudaSetDevice");
        if (setDevice(LocalRank) is var cudaError && cudaError != 0)
            throw new DistributedException($"NCCL backend: rank {Rank}: cudaSetDevice({LocalRank}) failed with CUDA error {cudaError}; does this machine have {LocalWorldSize} GPU(s)?");
        _streamQuery = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(cudart, "cudaStreamQuery");
        var getUniqueId = (delegate* unmanaged<UniqueId*, int>)NativeLibrary.GetExport(nccl, "ncclGetUniqueId");
        var initRank = (delegate* unmanaged<IntPtr*, int, UniqueId, int, int>)NativeLibrary.GetExport(nccl, "ncclCommInitRank");
        _allReduce = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)NativeLibrary.GetExport(nccl, "ncclAllReduce");
        _reduceScatter = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)NativeLibrary.GetExport(nccl, "ncclReduceScatter");
        _allGather = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, IntPtr, IntPtr, int>)NativeLibrary.GetExport(nccl, "ncclAllGather");
        _broadcast = (delegate* unmanaged<IntPtr, IntPtr, nuint, int, int, IntPtr, IntPtr, int>)NativeLibrary.GetExport(nccl, "ncclBroadcast");
        _asyncError = (delegate* unmanaged<IntPtr, int*, int>)NativeLibrary.GetExport(nccl, "ncclCommGetAsyncError");
        _abort = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(nccl, "ncclCommAbort");
        _destroy = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(nccl, "ncclCommDestroy");
        _errorString = (delegate* unmanaged<int, IntPtr>)NativeLibrary.GetExport(nccl, "ncclGetErrorString");
        // ncclCommSplit exists from NCCL 2.18 on; without it Split throws NotSupportedException.
        _split = NativeLibrary.TryGetExport(nccl, "ncclCommSplit", out IntPtr split) ? (delegate* unmanaged<IntPtr, int, int, IntPtr*, IntPtr, int>)split : null;
        _label = "nccl";

        UniqueId id = default;
        byte[]? payload = null;
        if (Rank == 0)
        {
            Check(getUniqueId(&id), "ncclGetUniqueId");
            payload = new byte[128];
            new ReadOnlySpan<byte>(id.Internal, 128).CopyTo(payload);
        }
        TcpRendezvous.Result result = TcpRendezvous.ExchangeAsync(launch, payload, Timeout).GetAwaiter().GetResult();
        if (result.Payload.Length != 128) throw new DistributedException($"NCCL backend: rank {Rank}: the rendezvous sent {result.Payload.Length} bytes; NCCL's unique id has 128.");
        result.Payload.CopyTo(new Span<byte>(id.Internal, 128));
        _peers = new PeerTable(result.Peers, Rank);
        IntPtr comm;
        Check(initRank(&comm, WorldSize, id, Rank), "ncclCommInitRank");
        _comm = comm;
    }

    /// <summary>A sub-group over <paramref name="comm"/> (from <c>ncclCommSplit</c> of <paramref name="parent"/>'s communicator).</summary>
    private NcclProcessGroup(NcclProcessGroup parent, IntPtr comm, SubGroupPlan plan, int color)
    {
        Timeout = parent.Timeout;
        Rank = plan.Rank;
        WorldSize = plan.Size;
        LocalRank = parent.LocalRank;
        LocalWorldSize = parent.LocalWorldSize;
        _comm = comm;
        _allReduce = parent._allReduce;
        _reduceScatter = parent._reduceScatter;
        _allGather = parent._allGather;
        _broadcast = parent._broadcast;
        _asyncError = parent._asyncError;
        _abort = parent._abort;
        _destroy = parent._destroy;
        _errorString = parent._errorString;
        _streamQuery = parent._streamQuery;
        _split = parent._split;
        _label = $"nccl sub-group {color} (ranks {string.Join(", ", plan.ParentRanks)} of {parent._label})";
        _peers = new PeerTable([.. plan.ParentRanks.Select((r, i) => parent._peers.Peers[r] with { Rank = i })], Rank);
    }

    /// <summary>Whether the loaded NCCL has <c>ncclCommSplit</c> (NCCL 2.18 and later), which <see cref="Split"/> needs.</summary>
    public bool CanSplit => _split != null;

    /// <summary>
    /// Splits this group with <c>ncclCommSplit</c> (NCCL 2.18 and later); see <see cref="IProcessGroup.Split"/>. Every
    /// rank first exchanges its color and key through this group's all-gather (bounded by <see cref="Timeout"/>).
    /// Untested here (no GPU in CI).
    /// </summary>
    /// <param name="color">The sub-group to join (0 or more).</param>
    /// <param name="key">Orders the ranks within the sub-group (ties: by rank in this group).</param>
    /// <returns>This rank's sub-group; dispose it before this group.</returns>
    /// <exception cref="NotSupportedException">The loaded NCCL has no <c>ncclCommSplit</c>.</exception>
    public IProcessGroup Split(int color, int key)
    {
        if (_split == null)
            throw new NotSupportedException($"{_label}: rank {Rank}: the loaded NCCL has no ncclCommSplit (it needs NCCL 2.18 or later), so this group cannot be split into sub-groups; install a newer libnccl2.");
        SubGroupPlan plan = SubGroupPlan.Exchange(this, color, key, new torch.Device(DeviceType.CUDA, LocalRank));
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_failed) throw new DistributedException($"{_label}: rank {Rank}: an earlier collective failed; this process group cannot be used any more.");
            IntPtr comm = IntPtr.Zero;
            Check(_split(_comm, color, key, &comm, IntPtr.Zero), $"ncclCommSplit(color {color}, key {key})");
            return new NcclProcessGroup(this, comm, plan, color);
        }
    }

    /// <inheritdoc />
    public int Rank { get; }

    /// <inheritdoc />
    public int WorldSize { get; }

    /// <inheritdoc />
    public int LocalRank { get; }

    /// <inheritdoc />
    public int LocalWorldSize { get; }

    /// <inheritdoc />
    public string Backend => "nccl";

    /// <inheritdoc />
    public TimeSpan Timeout { get; }

    /// <inheritdoc />
    public void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
    {
        CollectiveChecks.Tensor(tensor, nameof(tensor), _label, Rank, cuda: true);
        IntPtr data = NcclTypes.DataPointer(tensor);
        Run("all-reduce", () => _allReduce(data, data, (nuint)tensor.numel(), (int)NcclTypes.DataType(tensor.dtype), NcclTypes.RedOp(op), _comm, IntPtr.Zero));
    }

    /// <inheritdoc />
    public void ReduceScatter(torch.Tensor input, torch.Tensor output, ReduceOp op = ReduceOp.Sum)
    {
        CollectiveChecks.Tensor(input, nameof(input), _label, Rank, cuda: true);
        CollectiveChecks.Tensor(output, nameof(output), _label, Rank, cuda: true);
        CollectiveChecks.Sizes(output, input, WorldSize, "reduce-scatter", _label, Rank);
        IntPtr send = NcclTypes.DataPointer(input), receive = NcclTypes.DataPointer(output);
        Run("reduce-scatter", () => _reduceScatter(send, receive, (nuint)output.numel(), (int)NcclTypes.DataType(output.dtype), NcclTypes.RedOp(op), _comm, IntPtr.Zero));
    }

    /// <inheritdoc />
    public void AllGather(torch.Tensor input, torch.Tensor output)
    {
        CollectiveChecks.Tensor(input, nameof(input), _label, Rank, cuda: true);
        CollectiveChecks.Tensor(output, nameof(output), _label, Rank, cuda: true);
        CollectiveChecks.Sizes(input, output, WorldSize, "all-gather", _label, Rank);
        IntPtr send = NcclTypes.DataPointer(input), receive = NcclTypes.DataPointer(output);
        Run("all-gather", () => _allGather(send, receive, (nuint)input.numel(), (int)NcclTypes.DataType(input.dtype), _comm, IntPtr.Zero));
    }

    /// <inheritdoc />
    public void Broadcast(torch.Tensor tensor, int root = 0)
    {
        CollectiveChecks.Tensor(tensor, nameof(tensor), _label, Rank, cuda: true);
        CollectiveChecks.Root(root, WorldSize, _label, Rank);
        IntPtr data = NcclTypes.DataPointer(tensor);
        Run("broadcast", () => _broadcast(data, data, (nuint)tensor.numel(), (int)NcclTypes.DataType(tensor.dtype), root, _comm, IntPtr.Zero));
    }

    /// <inheritdoc />
    public void Barrier()
    {
        _barrier ??= torch.zeros(1, torch.ScalarType.Float32, new torch.Device(DeviceType.CUDA, LocalRank));
        AllReduce(_barrier);
    }

    /// <summary>Destroys the communicator (aborts it after a failure).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _barrier?.Dispose();
            _ = _failed ? _abort(_comm) : _destroy(_comm);
        }
    }

    private void Run(string operation, Func<int> enqueue)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_failed) throw new DistributedException($"{_label}: rank {Rank}: an earlier collective failed; this process group cannot be used any more.");
            long sequence = ++_sequence;
            int code = enqueue();
            if (code != 0) Fail($"{operation} #{sequence} failed to start: {Describe(code)}");
            int asyncCode = 0, cuda = 0;
            bool done = CollectiveChecks.Poll(() =>
            {
                int e = 0;
                if (_asyncError(_comm, &e) == 0 && e != 0)
                {
                    asyncCode = e;
                    return true;
                }
                cuda = _streamQuery(IntPtr.Zero);
                return cuda != CudaErrorNotReady;
            }, Timeout);
            if (!done)
            {
                _failed = true;
                _ = _abort(_comm);
                throw _peers.TimeoutError(_label, $"{operation} #{sequence}", Timeout);
            }
            if (asyncCode != 0) Fail($"{operation} #{sequence} failed: {Describe(asyncCode)} (a rank may have died)");
            if (cuda != 0) Fail($"{operation} #{sequence}: the CUDA stream reported error {cuda}");
        }
    }

    private void Fail(string message)
    {
        _failed = true;
        throw new DistributedException($"{_label}: rank {Rank}: {message}.");
    }

    private string Describe(int code) => $"NCCL error {code}: {Marshal.PtrToStringUTF8(_errorString(code))}";

    private void Check(int code, string call)
    {
        if (code != 0) throw new DistributedException($"NCCL backend: rank {Rank}: {call} failed: {Describe(code)}.");
    }

    private static IntPtr LoadCudaRuntime()
    {
        foreach (string name in (string[])["libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0", "libcudart.so"])
        {
            if (NativeLibrary.TryLoad(name, out IntPtr handle)) return handle;
        }
        throw new DistributedException("NCCL backend: the CUDA runtime (libcudart.so.12) was not found; install the CUDA runtime that matches libtorch's CUDA build, or add its lib folder to LD_LIBRARY_PATH.");
    }
}
