using System.Runtime.InteropServices;
using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>NCCL's element types (<c>ncclDataType_t</c>).</summary>
public enum NcclDataType
{
    /// <summary><c>ncclInt8</c>.</summary>
    Int8 = 0,

    /// <summary><c>ncclUint8</c>.</summary>
    UInt8 = 1,

    /// <summary><c>ncclInt32</c>.</summary>
    Int32 = 2,

    /// <summary><c>ncclUint32</c>.</summary>
    UInt32 = 3,

    /// <summary><c>ncclInt64</c>.</summary>
    Int64 = 4,

    /// <summary><c>ncclUint64</c>.</summary>
    UInt64 = 5,

    /// <summary><c>ncclFloat16</c>.</summary>
    Float16 = 6,

    /// <summary><c>ncclFloat32</c>.</summary>
    Float32 = 7,

    /// <summary><c>ncclFloat64</c>.</summary>
    Float64 = 8,

    /// <summary><c>ncclBfloat16</c> (NCCL 2.10 and later).</summary>
    BFloat16 = 9,
}

/// <summary>The mapping from torch dtypes and Bagel reductions to NCCL's enums, and device-pointer arithmetic.</summary>
public static class NcclTypes
{
    /// <summary>NCCL's type for <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentException">NCCL has no such type (complex numbers, int16).</exception>
    public static NcclDataType DataType(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Int8 => NcclDataType.Int8,
        torch.ScalarType.Byte or torch.ScalarType.Bool => NcclDataType.UInt8,
        torch.ScalarType.Int32 => NcclDataType.Int32,
        torch.ScalarType.Int64 => NcclDataType.Int64,
        torch.ScalarType.Float16 => NcclDataType.Float16,
        torch.ScalarType.Float32 => NcclDataType.Float32,
        torch.ScalarType.Float64 => NcclDataType.Float64,
        torch.ScalarType.BFloat16 => NcclDataType.BFloat16,
        _ => throw new ArgumentException($"NCCL backend: dtype {type} has no NCCL type (it has int8, uint8, int32, int64, float16, bfloat16, float32, float64).", nameof(type)),
    };

    /// <summary>NCCL's reduction (<c>ncclRedOp_t</c>: sum 0, max 2, avg 4).</summary>
    public static int RedOp(ReduceOp op) => op switch
    {
        ReduceOp.Sum => 0,
        ReduceOp.Max => 2,
        ReduceOp.Avg => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown reduction."),
    };

    /// <summary>The bytes of one element of <paramref name="type"/>.</summary>
    public static int ElementSize(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Int8 or torch.ScalarType.Byte or torch.ScalarType.Bool => 1,
        torch.ScalarType.Int16 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16 => 2,
        torch.ScalarType.Int32 or torch.ScalarType.Float32 => 4,
        torch.ScalarType.Int64 or torch.ScalarType.Float64 => 8,
        _ => throw new ArgumentException($"Element size of {type} is not known here.", nameof(type)),
    };

    /// <summary>
    /// The address of element <paramref name="elementOffset"/> of a buffer starting at <paramref name="basePointer"/>:
    /// base + offset · element size (a chunk of a flat bucket, rank r's shard of a reduce-scatter).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative offset or a null base.</exception>
    public static IntPtr Offset(IntPtr basePointer, long elementOffset, torch.ScalarType type)
    {
        if (basePointer == IntPtr.Zero) throw new ArgumentOutOfRangeException(nameof(basePointer), "The buffer's base pointer is null.");
        ArgumentOutOfRangeException.ThrowIfNegative(elementOffset);
        return checked((IntPtr)((long)basePointer + elementOffset * ElementSize(type)));
    }

    /// <summary>The device address of <paramref name="tensor"/>'s first element (libtorch's <c>data_ptr()</c>, which includes the view's storage offset).</summary>
    public static IntPtr DataPointer(torch.Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return NativeInterop.DataPointer(tensor);
    }
}

/// <summary>Finds NCCL (<c>libnccl.so.2</c>) and explains what to install when it is missing.</summary>
public static class NcclProbe
{
    /// <summary>NCCL's runtime library name.</summary>
    public const string FileName = "libnccl.so.2";

    /// <summary>Looks for NCCL: <c>BAGEL_NCCL_LIBRARY</c> when set, else <c>libnccl.so.2</c> on the library path.</summary>
    /// <param name="error">Null when found; else what is missing and what to install.</param>
    /// <returns>Whether it loaded.</returns>
    public static bool TryLoad(out string? error) => TryLoad(Environment.GetEnvironmentVariable("BAGEL_NCCL_LIBRARY") is { Length: > 0 } custom ? custom : FileName, out _, out error);

    /// <summary>Tries to load <paramref name="library"/> (a name or path).</summary>
    /// <param name="library">The file to load.</param>
    /// <param name="handle">The loaded library.</param>
    /// <param name="error">Null when found; else what is missing and what to install.</param>
    /// <returns>Whether it loaded.</returns>
    public static bool TryLoad(string library, out IntPtr handle, out string? error)
    {
        ArgumentNullException.ThrowIfNull(library);
        if (NativeLibrary.TryLoad(library, out handle))
        {
            error = null;
            return true;
        }
        error = $"NCCL backend: {library} was not found. Install NVIDIA's NCCL runtime (Debian/Ubuntu with NVIDIA's CUDA repository: apt-get install libnccl2; " +
                "or the Python wheel nvidia-nccl-cu12, then add its nvidia/nccl/lib folder to LD_LIBRARY_PATH), or set BAGEL_NCCL_LIBRARY to the path of libnccl.so.2. " +
                "On CPU use the MPI backend (BAGEL_DIST_BACKEND=mpi, processes started by mpirun or srun).";
        return false;
    }
}
