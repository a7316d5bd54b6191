using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>
/// A process group over Open MPI (<c>libmpi.so.40</c>, P/Invoked) on CPU tensors, for processes started by
/// <c>mpirun</c> or <c>srun</c>. Collectives are MPI's non-blocking ones polled with <c>MPI_Test</c>, so a rank that died
/// or hangs makes the others throw <see cref="CollectiveTimeoutException"/> after <see cref="Timeout"/> instead of
/// waiting forever (errors are returned, not fatal: <c>MPI_ERRORS_RETURN</c>). Float16 and bfloat16 tensors (which MPI
/// has no type for) are reduced through a float32 copy. One group per process: MPI is initialised once.
/// </summary>
/// <remarks>
/// With plain <c>mpirun</c>, a rank that is killed makes <c>mpirun</c> end the whole job at once (it prints the dead
/// rank); with <c>mpirun --enable-recovery</c> the survivors run on and report through this group's timeout.
/// </remarks>
public sealed unsafe class MpiProcessGroup : IProcessGroup
{
    private static int _created;
    private readonly MpiLibrary _mpi;
    private readonly PeerTable _peers;
    private readonly object _gate = new();
    private long _sequence;
    private bool _failed, _disposed;

    /// <summary>Initialises MPI (<c>MPI_Init_thread</c>, serialized) and exchanges every rank's host and process id.</summary>
    /// <param name="timeout">How long a collective may wait (default 10 minutes).</param>
    /// <param name="launch">The launcher's variables, checked against MPI's rank and size (default: read from the environment).</param>
    /// <exception cref="DistributedException">Open MPI is missing, was initialised already, or disagrees with the launcher's variables.</exception>
    public MpiProcessGroup(TimeSpan? timeout = null, LaunchEnvironment? launch = null)
    {
        Timeout = timeout ?? ProcessGroupOptions.DefaultTimeout;
        if (Timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The collective timeout must be positive.");
        if (Interlocked.Exchange(ref _created, 1) != 0)
            throw new DistributedException("MPI backend: a process can create one MpiProcessGroup (MPI is initialised once); share it.");
        // Open MPI's own SIGSEGV/SIGBUS handlers would replace .NET's (which turn null dereferences into exceptions).
        NativeInterop.SetEnvironmentDefault("OMPI_MCA_opal_signal", "");
        _mpi = MpiLibrary.Load();
        int provided = 0, initialized = 0;
        Check(_mpi.Initialized(&initialized), "MPI_Initialized");
        if (initialized != 0) throw new DistributedException("MPI backend: MPI was initialised already in this process; create the group before anything else calls MPI_Init.");
        Check(_mpi.InitThread(null, IntPtr.Zero, MpiLibrary.ThreadSerialized, &provided), "MPI_Init_thread");
        if (provided < MpiLibrary.ThreadSerialized)
            throw new DistributedException($"MPI backend: Open MPI provides thread level {provided}; Bagel needs MPI_THREAD_SERIALIZED (2), as calls may come from different threads in turn.");
        Check(_mpi.CommSetErrhandler(_mpi.CommWorld, _mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
        int rank = 0, size = 0;
        Check(_mpi.CommRank(_mpi.CommWorld, &rank), "MPI_Comm_rank");
        Check(_mpi.CommSize(_mpi.CommWorld, &size), "MPI_Comm_size");
        Rank = rank;
        WorldSize = size;
        launch ??= LaunchEnvironment.FromEnvironment();
        if (launch.Kind != LaunchKind.None && (launch.Rank != rank || launch.WorldSize != size))
            throw new DistributedException($"MPI backend: {launch.Kind}'s variables say rank {launch.Rank} of {launch.WorldSize}, but MPI_COMM_WORLD has rank {rank} of {size}. " +
                                           "Start the processes with mpirun or srun (not torchrun) for the MPI backend.");

        // Every rank's host and pid: names the rank that is gone when a collective times out, and gives the local ranks.
        var peers = new PeerInfo[size];
        using (torch.Tensor mine = torch.zeros(PeerInfo.EncodedSize, torch.ScalarType.Byte))
        using (torch.Tensor all = torch.zeros((long)PeerInfo.EncodedSize * size, torch.ScalarType.Byte))
        {
            var bytes = new byte[PeerInfo.EncodedSize];
            PeerInfo.Current(rank).Encode(bytes);
            using (torch.Tensor source = torch.tensor(bytes)) mine.copy_(source);
            _peers = new PeerTable([.. Enumerable.Range(0, size).Select(r => new PeerInfo(r, "?", 0))], rank);
            AllGather(mine, all);
            byte[] gathered = all.data<byte>().ToArray();
            for (int r = 0; r < size; r++) peers[r] = PeerInfo.Decode(r, gathered.AsSpan(r * PeerInfo.EncodedSize, PeerInfo.EncodedSize));
        }
        _peers = new PeerTable(peers, rank);
        (LocalRank, LocalWorldSize) = _peers.Local();
    }

    /// <summary>Whether Open MPI's library can be loaded in this process.</summary>
    public static bool IsAvailable() => MpiLibrary.IsAvailable();

    /// <inheritdoc />
    public int Rank { get; }

    /// <inheritdoc />
    public int WorldSize { get; }

    /// <inheritdoc />
    public int LocalRank { get; }

    /// <inheritdoc />
    public int LocalWorldSize { get; }

    /// <inheritdoc />
    public string Backend => "mpi";

    /// <inheritdoc />
    public TimeSpan Timeout { get; }

    /// <summary>Every rank's host and process id.</summary>
    public PeerTable Peers => _peers;

    /// <inheritdoc />
    public void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
    {
        CollectiveChecks.Tensor(tensor, nameof(tensor), Backend, Rank, cuda: false);
        if (tensor.numel() == 0) return;
        WithMpiType(tensor, t =>
        {
            Run("all-reduce", (IntPtr* request) => _mpi.Iallreduce((IntPtr)1 /* MPI_IN_PLACE */, NativeInterop.DataPointer(t), Count(t), Type(t), Op(op), _mpi.CommWorld, request));
            if (op == ReduceOp.Avg) DivideByWorld(t);
        });
    }

    /// <inheritdoc />
    public void ReduceScatter(torch.Tensor input, torch.Tensor output, ReduceOp op = ReduceOp.Sum)
    {
        CollectiveChecks.Tensor(input, nameof(input), Backend, Rank, cuda: false);
        CollectiveChecks.Tensor(output, nameof(output), Backend, Rank, cuda: false);
        CollectiveChecks.Sizes(output, input, WorldSize, "reduce-scatter", Backend, Rank);
        if (output.numel() == 0) return;
        WithMpiType(input, i => WithMpiType(output, o =>
        {
            Run("reduce-scatter", (IntPtr* request) => _mpi.IreduceScatterBlock(NativeInterop.DataPointer(i), NativeInterop.DataPointer(o), Count(o), Type(o), Op(op), _mpi.CommWorld, request));
            if (op == ReduceOp.Avg) DivideByWorld(o);
        }, copyIn: false));
    }

    /// <inheritdoc />
    public void AllGather(torch.Tensor input, torch.Tensor output)
    {
        CollectiveChecks.Tensor(input, nameof(input), Backend, Rank, cuda: false);
        CollectiveChecks.Tensor(output, nameof(output), Backend, Rank, cuda: false);
        CollectiveChecks.Sizes(input, output, WorldSize, "all-gather", Backend, Rank);
        if (input.numel() == 0) return;
        WithMpiType(input, i => WithMpiType(output, o =>
            Run("all-gather", (IntPtr* request) => _mpi.Iallgather(NativeInterop.DataPointer(i), Count(i), Type(i), NativeInterop.DataPointer(o), Count(i), Type(o), _mpi.CommWorld, request)),
            copyIn: false));
    }

    /// <inheritdoc />
    public void Broadcast(torch.Tensor tensor, int root = 0)
    {
        CollectiveChecks.Tensor(tensor, nameof(tensor), Backend, Rank, cuda: false);
        CollectiveChecks.Root(root, WorldSize, Backend, Rank);
        if (tensor.numel() == 0) return;
        // No MPI type (half precision): sent as float32, which holds every half and bfloat16 value exactly.
        WithMpiType(tensor, t =>
            Run("broadcast", (IntPtr* request) => _mpi.Ibcast(NativeInterop.DataPointer(t), Count(t), Type(t), root, _mpi.CommWorld, request)));
    }

    /// <inheritdoc />
    public void Barrier() => Run("barrier", (IntPtr* request) => _mpi.Ibarrier(_mpi.CommWorld, request));

    /// <summary>
    /// Finalises MPI after a barrier (bounded by the timeout). After a failed collective MPI is left as it is (its
    /// pending request cannot be cancelled); the process should end.
    /// </summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            if (_failed) return;
            int finalized = 0;
            if (_mpi.Finalized(&finalized) == 0 && finalized == 0)
            {
                try
                {
                    _disposed = false;
                    Barrier();
                }
                catch (DistributedException)
                {
                    return;
                }
                finally
                {
                    _disposed = true;
                }
                _ = _mpi.Finalize();
            }
        }
    }

    /// <summary>Ends every rank of the job (<c>MPI_Abort</c>); for a rank that cannot continue and must not leave the others waiting.</summary>
    /// <param name="exitCode">The exit code the job ends with.</param>
    public void Abort(int exitCode) => _ = _mpi.Abort(_mpi.CommWorld, exitCode);

    private delegate int Start(IntPtr* request);

    private void Run(string operation, Start start)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_failed) throw new DistributedException($"{Backend}: rank {Rank}: an earlier collective failed; this process group cannot be used any more.");
            long sequence = ++_sequence;
            IntPtr* request = stackalloc IntPtr[1];
            int* flag = stackalloc int[1];
            *request = IntPtr.Zero;
            int code = start(request);
            if (code != 0)
            {
                _failed = true;
                throw new DistributedException($"{Backend}: rank {Rank}: {operation} #{sequence} failed to start: {_mpi.Describe(code)}.");
            }
            int error = 0;
            bool done = CollectiveChecks.Poll(() =>
            {
                *flag = 0;
                error = _mpi.Test(request, flag, IntPtr.Zero);
                return error != 0 || *flag != 0;
            }, Timeout);
            if (!done)
            {
                _failed = true;
                throw _peers.TimeoutError(Backend, $"{operation} #{sequence}", Timeout);
            }
            if (error != 0)
            {
                _failed = true;
                throw _peers.FailureError(Backend, $"{operation} #{sequence}", _mpi.Describe(error));
            }
        }
    }

    private void WithMpiType(torch.Tensor tensor, Action<torch.Tensor> action, bool copyIn = true)
    {
        if (MpiTypeOf(tensor) != IntPtr.Zero)
        {
            action(tensor);
            return;
        }
        using var noGrad = torch.no_grad();
        using torch.Tensor wide = copyIn ? tensor.to(torch.ScalarType.Float32) : torch.empty(tensor.shape, torch.ScalarType.Float32);
        action(wide);
        tensor.copy_(wide);
    }

    private IntPtr MpiTypeOf(torch.Tensor tensor) => _mpi.DataType(tensor.dtype);

    private IntPtr Type(torch.Tensor tensor) => MpiTypeOf(tensor) is var type && type != IntPtr.Zero
        ? type
        : throw new ArgumentException($"{Backend}: rank {Rank}: dtype {tensor.dtype} has no MPI type.");

    private IntPtr Op(ReduceOp op) => op == ReduceOp.Max ? _mpi.OpMax : _mpi.OpSum;

    private int Count(torch.Tensor tensor) => tensor.numel() <= int.MaxValue
        ? (int)tensor.numel()
        : throw new ArgumentException($"{Backend}: rank {Rank}: {tensor.numel()} elements exceed MPI's int count; split the buffer.");

    private void DivideByWorld(torch.Tensor tensor)
    {
        using var noGrad = torch.no_grad();
        if (tensor.is_floating_point()) tensor.div_(WorldSize);
        else tensor.floor_divide_(WorldSize);
    }

    private void Check(int code, string call)
    {
        if (code != 0) throw new DistributedException($"MPI backend: {call} failed: {_mpi.Describe(code)}.");
    }
}
