using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>
/// A process group over Open MPI (<c>libmpi.so.40</c>, P/Invoked) on CPU tensors, for processes started by
/// <c>mpirun</c> or <c>srun</c>. Collectives are MPI's non-blocking ones polled with <c>MPI_Test</c>, so a rank that died
/// or hangs makes the others throw <see cref="CollectiveTimeoutException"/> after <see cref="Timeout"/> instead of
/// waiting forever (errors are returned, not fatal: <c>MPI_ERRORS_RETURN</c>). Float16 and bfloat16 tensors (which MPI
/// has no type for) are reduced through a float32 copy. One group per process: MPI is initialised once; sub-groups of
/// it come from <see cref="Split"/> (<c>MPI_Comm_split</c>) and behave the same way (same timeout and error handling).
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
    private readonly Shared _shared;
    private readonly IntPtr _comm;
    private readonly bool _isWorld;
    private readonly string _label;
    private readonly int[] _worldRanks;
    private long _sequence;
    private bool _disposed;

    /// <summary>
    /// What the world group and its sub-groups share: one lock (MPI is initialised <c>MPI_THREAD_SERIALIZED</c>, so no
    /// two MPI calls may overlap, whatever their communicator), whether a collective failed (its request is left
    /// pending, so MPI is not used again), and whether MPI was finalised (by disposing the world group).
    /// </summary>
    private sealed class Shared
    {
        public readonly object Gate = new();
        public bool Failed;
        public bool Finalized;
    }

    /// <summary>Initialises MPI (<c>MPI_Init_thread</c>, serialized) and exchanges every rank's host and process id.</summary>
    /// <param name="timeout">How long a collective may wait (default 10 minutes).</param>
    /// <param name="launch">The launcher's variables, checked against MPI's rank and size (default: read from the environment).</param>
    /// <exception cref="DistributedException">Open MPI is missing, was initialised already, or disagrees with the launcher's variables.</exception>
    public MpiProcessGroup(TimeSpan? timeout = null, LaunchEnvironment? launch = null)
    {
        Timeout = timeout ?? ProcessGroupOptions.DefaultTimeout;
        if (Timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The collective timeout must be positive.");
        _shared = new Shared();
        _isWorld = true;
        _label = "mpi";
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
        _comm = _mpi.CommWorld;
        Check(_mpi.CommSetErrhandler(_mpi.CommWorld, _mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
        int rank = 0, size = 0;
        Check(_mpi.CommRank(_mpi.CommWorld, &rank), "MPI_Comm_rank");
        Check(_mpi.CommSize(_mpi.CommWorld, &size), "MPI_Comm_size");
        Rank = rank;
        WorldSize = size;
        _worldRanks = [.. Enumerable.Range(0, size)];
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

    /// <summary>A sub-group over <paramref name="comm"/> (from <c>MPI_Comm_split</c> of <paramref name="parent"/>'s communicator).</summary>
    private MpiProcessGroup(MpiProcessGroup parent, IntPtr comm, SubGroupPlan plan, int color)
    {
        _mpi = parent._mpi;
        _shared = parent._shared;
        _comm = comm;
        _isWorld = false;
        Timeout = parent.Timeout;
        Rank = plan.Rank;
        WorldSize = plan.Size;
        LocalRank = parent.LocalRank;
        LocalWorldSize = parent.LocalWorldSize;
        _worldRanks = [.. plan.ParentRanks.Select(r => parent._worldRanks[r])];
        _label = $"mpi sub-group {color} (world ranks {string.Join(", ", _worldRanks)})";
        _peers = new PeerTable([.. plan.ParentRanks.Select((r, i) => parent._peers.Peers[r] with { Rank = i })], Rank);
        int rank = 0, size = 0;
        try
        {
            Check(_mpi.CommSetErrhandler(comm, _mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
            Check(_mpi.CommRank(comm, &rank), "MPI_Comm_rank");
            Check(_mpi.CommSize(comm, &size), "MPI_Comm_size");
            if (rank != Rank || size != WorldSize)
                throw new DistributedException($"{_label}: MPI_Comm_split made rank {rank} of {size}, but the exchanged colors and keys give rank {Rank} of {WorldSize}.");
        }
        catch
        {
            IntPtr handle = comm;
            _ = _mpi.CommFree(&handle);
            throw;
        }
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

    /// <summary>Every rank's host and process id (indexed by this group's ranks).</summary>
    public PeerTable Peers => _peers;

    /// <summary>The world rank (rank in the group <c>mpirun</c> started) of each of this group's ranks.</summary>
    public IReadOnlyList<int> WorldRanks => _worldRanks;

    /// <summary>
    /// Splits this group into sub-groups with <c>MPI_Comm_split</c>; see <see cref="IProcessGroup.Split"/>. Every rank
    /// first exchanges its color and key through this group's all-gather (bounded by <see cref="Timeout"/>), so that a
    /// rank that never arrives makes the others time out instead of blocking in <c>MPI_Comm_split</c> (which has no
    /// non-blocking form); the sub-group inherits the timeout and the error handling, and shares this group's lock.
    /// </summary>
    /// <param name="color">The sub-group to join (0 or more); ranks with the same color form one group.</param>
    /// <param name="key">Orders the ranks within the sub-group (ties: by rank in this group).</param>
    /// <returns>This rank's sub-group; dispose it (<c>MPI_Comm_free</c>) before the world group.</returns>
    public IProcessGroup Split(int color, int key)
    {
        SubGroupPlan plan = SubGroupPlan.Exchange(this, color, key, device: null);
        IntPtr comm = IntPtr.Zero;
        lock (_shared.Gate)
        {
            ThrowIfUnusable();
            int code = _mpi.CommSplit(_comm, color, key, &comm);
            if (code != 0)
            {
                _shared.Failed = true;
                throw new DistributedException($"{_label}: rank {Rank}: MPI_Comm_split(color {color}, key {key}) failed: {_mpi.Describe(code)}.");
            }
            return new MpiProcessGroup(this, comm, plan, color);
        }
    }

    /// <inheritdoc />
    public void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
    {
        CollectiveChecks.Tensor(tensor, nameof(tensor), _label, Rank, cuda: false);
        if (tensor.numel() == 0) return;
        WithMpiType(tensor, t =>
        {
            Run("all-reduce", (IntPtr* request) => _mpi.Iallreduce((IntPtr)1 /* MPI_IN_PLACE */, NativeInterop.DataPointer(t), Count(t), Type(t), Op(op), _comm, request));
            if (op == ReduceOp.Avg) DivideByWorld(t);
        });
    }

    /// <inheritdoc />
    public void ReduceScatter(torch.Tensor input, torch.Tensor output, ReduceOp op = ReduceOp.Sum)
    {
        CollectiveChecks.Tensor(input, nameof(input), _label, Rank, cuda: false);
        CollectiveChecks.Tensor(output, nameof(output), _label, Rank, cuda: false);
        CollectiveChecks.Sizes(output, input, WorldSize, "reduce-scatter", _label, Rank);
        if (output.numel() == 0) return;
        WithMpiType(input, i => WithMpiType(output, o =>
        {
            Run("reduce-scatter", (IntPtr* request) => _mpi.IreduceScatterBlock(NativeInterop.DataPointer(i), NativeInterop.DataPointer(o), Count(o), Type(o), Op(op), _comm, request));
            if (op == ReduceOp.Avg) DivideByWorld(o);
        }, copyIn: false));
    }

    /// <inheritdoc />
    public void AllGather(torch.Tensor input, torch.Tensor output)
    {
        CollectiveChecks.Tensor(input, nameof(input), _label, Rank, cuda: false);
        CollectiveChecks.Tensor(output, nameof(output), _label, Rank, cuda: false);
        CollectiveChecks.Sizes(input, output, WorldSize, "all-gather", _label, Rank);
        if (input.numel() == 0) return;
        WithMpiType(input, i => WithMpiType(output, o =>
            Run("all-gather", (IntPtr* request) => _mpi.Iallgather(NativeInterop.DataPointer(i), Count(i), Type(i), NativeInterop.DataPointer(o), Count(i), Type(o), _comm, request)),
            copyIn: false));
    }

    /// <inheritdoc />
    public void Broadcast(torch.Tensor tensor, int root = 0)
    {
        CollectiveChecks.Tensor(tensor, nameof(tensor), _label, Rank, cuda: false);
        CollectiveChecks.Root(root, WorldSize, _label, Rank);
        if (tensor.numel() == 0) return;
        // No MPI type (half precision): sent as float32, which holds every half and bfloat16 value exactly.
        WithMpiType(tensor, t =>
            Run("broadcast", (IntPtr* request) => _mpi.Ibcast(NativeInterop.DataPointer(t), Count(t), Type(t), root, _comm, request)));
    }

    /// <inheritdoc />
    public void Barrier() => Run("barrier", (IntPtr* request) => _mpi.Ibarrier(_comm, request));

    /// <summary>
    /// The world group: finalises MPI after a barrier (bounded by the timeout); its sub-groups cannot be used after
    /// that. A sub-group: frees its communicator (<c>MPI_Comm_free</c>, local to this rank). After a failed collective
    /// MPI is left as it is (its pending request cannot be cancelled); the process should end.
    /// </summary>
    public void Dispose()
    {
        lock (_shared.Gate)
        {
            if (_disposed) return;
            _disposed = true;
            if (_shared.Failed || _shared.Finalized) return;
            int finalized = 0;
            if (!_isWorld)
            {
                IntPtr comm = _comm;
                if (_mpi.Finalized(&finalized) == 0 && finalized == 0) _ = _mpi.CommFree(&comm);
                return;
            }
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
                _shared.Finalized = true;
            }
        }
    }

    /// <summary>Ends every rank of the job (<c>MPI_Abort</c>); for a rank that cannot continue and must not leave the others waiting.</summary>
    /// <param name="exitCode">The exit code the job ends with.</param>
    public void Abort(int exitCode) => _ = _mpi.Abort(_mpi.CommWorld, exitCode);

    private delegate int Start(IntPtr* request);

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_shared.Failed) throw new DistributedException($"{_label}: rank {Rank}: an earlier collective failed; this process group cannot be used any more.");
        if (_shared.Finalized) throw new DistributedException($"{_label}: rank {Rank}: the world process group was disposed (MPI is finalised); dispose sub-groups first.");
    }

    private void Run(string operation, Start start)
    {
        lock (_shared.Gate)
        {
            ThrowIfUnusable();
            long sequence = ++_sequence;
            IntPtr* request = stackalloc IntPtr[1];
            int* flag = stackalloc int[1];
            *request = IntPtr.Zero;
            int code = start(request);
            if (code != 0)
            {
                _shared.Failed = true;
                throw new DistributedException($"{_label}: rank {Rank}: {operation} #{sequence} failed to start: {_mpi.Describe(code)}.");
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
                _shared.Failed = true;
                throw _peers.TimeoutError(_label, $"{operation} #{sequence}", Timeout);
            }
            if (error != 0)
            {
                _shared.Failed = true;
                throw _peers.FailureError(_label, $"{operation} #{sequence}", _mpi.Describe(error));
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
        : throw new ArgumentException($"{_label}: rank {Rank}: dtype {tensor.dtype} has no MPI type.");

    private IntPtr Op(ReduceOp op) => op == ReduceOp.Max ? _mpi.OpMax : _mpi.OpSum;

    private int Count(torch.Tensor tensor) => tensor.numel() <= int.MaxValue
        ? (int)tensor.numel()
        : throw new ArgumentException($"{_label}: rank {Rank}: {tensor.numel()} elements exceed MPI's int count; split the buffer.");

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
