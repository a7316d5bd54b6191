using System.Runtime.InteropServices;
using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>
/// The entry points of Open MPI's <c>libmpi.so.40</c>, resolved at run time. Open MPI's handles (<c>MPI_COMM_WORLD</c>,
/// <c>MPI_FLOAT</c>, <c>MPI_SUM</c>, ...) are the addresses of global objects (<c>ompi_mpi_comm_world</c>, ...), read
/// with <see cref="NativeLibrary.GetExport"/>. Only the non-blocking collectives are used, so that the caller can poll
/// <c>MPI_Test</c> and give up after a timeout.
/// </summary>
internal sealed unsafe class MpiLibrary
{
    public const string FileName = "libmpi.so.40";
    public const int ThreadSerialized = 2;
    public const int MaxErrorString = 256;
    private static MpiLibrary? _loaded;
    private static readonly object Gate = new();
    private readonly IntPtr _handle;

    public readonly delegate* unmanaged<int*, IntPtr, int, int*, int> InitThread;
    public readonly delegate* unmanaged<int*, int> Initialized;
    public readonly delegate* unmanaged<int*, int> Finalized;
    public readonly delegate* unmanaged<int> Finalize;
    public readonly delegate* unmanaged<IntPtr, int, int> Abort;
    public readonly delegate* unmanaged<IntPtr, int*, int> CommRank;
    public readonly delegate* unmanaged<IntPtr, int*, int> CommSize;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int> CommSetErrhandler;
    public readonly delegate* unmanaged<IntPtr, int, int, IntPtr*, int> CommSplit;
    public readonly delegate* unmanaged<IntPtr*, int> CommFree;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*, int> Iallreduce;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*, int> IreduceScatterBlock;
    public readonly delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr*, int> Iallgather;
    public readonly delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, IntPtr*, int> Ibcast;
    public readonly delegate* unmanaged<IntPtr, IntPtr*, int> Ibarrier;
    public readonly delegate* unmanaged<IntPtr*, int*, IntPtr, int> Test;
    public readonly delegate* unmanaged<int, byte*, int*, int> ErrorString;

    public readonly IntPtr CommWorld, ErrorsReturn, OpSum, OpMax, Float, Double, Int8, UInt8, Int16, Int32, Int64;

    private MpiLibrary(IntPtr handle)
    {
        _handle = handle;
        InitThread = (delegate* unmanaged<int*, IntPtr, int, int*, int>)Export("MPI_Init_thread");
        Initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        Finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        Abort = (delegate* unmanaged<IntPtr, int, int>)Export("MPI_Abort");
        CommRank = (delegate* unmanaged<IntPtr, int*, int>)Export("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<IntPtr, int*, int>)Export("MPI_Comm_size");
        CommSetErrhandler = (delegate* unmanaged<IntPtr, IntPtr, int>)Export("MPI_Comm_set_errhandler");
        CommSplit = (delegate* unmanaged<IntPtr, int, int, IntPtr*, int>)Export("MPI_Comm_split");
        CommFree = (delegate* unmanaged<IntPtr*, int>)Export("MPI_Comm_free");
        Iallreduce = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*, int>)Export("MPI_Iallreduce");
        IreduceScatterBlock = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, IntPtr*, int>)Export("MPI_Ireduce_scatter_block");
        Iallgather = (delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr*, int>)Export("MPI_Iallgather");
        Ibcast = (delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, IntPtr*, int>)Export("MPI_Ibcast");
        Ibarrier = (delegate* unmanaged<IntPtr, IntPtr*, int>)Export("MPI_Ibarrier");
        Test = (delegate* unmanaged<IntPtr*, int*, IntPtr, int>)Export("MPI_Test");
        ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Export("MPI_Error_string");
        CommWorld = Export("ompi_mpi_comm_world");
        ErrorsReturn = Export("ompi_mpi_errors_return");
        OpSum = Export("ompi_mpi_op_sum");
        OpMax = Export("ompi_mpi_op_max");
        Float = Export("ompi_mpi_float");
        Double = Export("ompi_mpi_double");
        Int8 = Export("ompi_mpi_int8_t");
        UInt8 = Export("ompi_mpi_uint8_t");
        Int16 = Export("ompi_mpi_int16_t");
        Int32 = Export("ompi_mpi_int32_t");
        Int64 = Export("ompi_mpi_int64_t");
    }

    /// <summary>Loads Open MPI once per process.</summary>
    /// <exception cref="DistributedException">The library is missing or is not Open MPI.</exception>
    public static MpiLibrary Load()
    {
        lock (Gate)
        {
            if (_loaded is not null) return _loaded;
            string name = Environment.GetEnvironmentVariable("BAGEL_MPI_LIBRARY") is { Length: > 0 } custom ? custom : FileName;
            if (!NativeInterop.TryOpenGlobal(name, out IntPtr handle, out string? error))
                throw new DistributedException(
                    $"MPI backend: Open MPI's {name} could not be loaded ({error}). Install Open MPI 4.x (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev), " +
                    "or set BAGEL_MPI_LIBRARY to the path of libmpi.so.40.");
            try
            {
                _loaded = new MpiLibrary(handle);
            }
            catch (EntryPointNotFoundException e)
            {
                throw new DistributedException($"MPI backend: {name} lacks {e.Message}; the MPI backend needs Open MPI 4.x (MPICH's handles are not symbols).", e);
            }
            return _loaded;
        }
    }

    /// <summary>Whether Open MPI can be loaded here (for tests and the benchmark).</summary>
    public static bool IsAvailable()
    {
        try
        {
            Load();
            return true;
        }
        catch (DistributedException)
        {
            return false;
        }
    }

    /// <summary>The MPI datatype of <paramref name="type"/>, or zero when MPI has none (half precision: reduced in float32).</summary>
    public IntPtr DataType(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float32 => Float,
        torch.ScalarType.Float64 => Double,
        torch.ScalarType.Int8 => Int8,
        torch.ScalarType.Byte or torch.ScalarType.Bool => UInt8,
        torch.ScalarType.Int16 => Int16,
        torch.ScalarType.Int32 => Int32,
        torch.ScalarType.Int64 => Int64,
        _ => IntPtr.Zero,
    };

    public string Describe(int code)
    {
        byte* buffer = stackalloc byte[MaxErrorString];
        int length = 0;
        return ErrorString(code, buffer, &length) == 0 ? $"MPI error {code}: {Marshal.PtrToStringUTF8((IntPtr)buffer, length)}" : $"MPI error {code}";
    }

    private IntPtr Export(string name) => NativeLibrary.GetExport(_handle, name);
}
