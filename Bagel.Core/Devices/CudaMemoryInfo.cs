using System.Runtime.InteropServices;

namespace Bagel.Core.Devices;

/// <summary>
/// GPU memory figures from the CUDA runtime's <c>cudaMemGetInfo</c> (libcudart), which TorchSharp 0.107 does not
/// expose: free and total bytes of one device. TorchSharp also lacks libtorch's caching-allocator statistics
/// (<c>torch.cuda.max_memory_allocated</c> / <c>max_memory_reserved</c>, C++-only in libtorch), so "used" here is the
/// device-wide figure: torch's reserved cache plus the CUDA context plus any other process on the device.
/// </summary>
/// <remarks>Untested on a GPU here (no CUDA on the build machine); the absent-library path is tested.</remarks>
public sealed unsafe class CudaMemoryInfo
{
    /// <summary>The library names tried, in order (Linux, then Windows), before files named <c>libcudart*</c> /
    /// <c>cudart64*</c> beside the libtorch native files.</summary>
    public static readonly IReadOnlyList<string> DefaultLibraryNames =
        ["libcudart.so", "libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0", "cudart64_12.dll", "cudart64_13.dll", "cudart64_110.dll"];

    private readonly delegate* unmanaged<nuint*, nuint*, int> _memGetInfo;
    private readonly delegate* unmanaged<int*, int> _getDevice;
    private readonly delegate* unmanaged<int, int> _setDevice;

    private CudaMemoryInfo(IntPtr library, string path)
    {
        _memGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)NativeLibrary.GetExport(library, "cudaMemGetInfo");
        _getDevice = (delegate* unmanaged<int*, int>)NativeLibrary.GetExport(library, "cudaGetDevice");
        _setDevice = (delegate* unmanaged<int, int>)NativeLibrary.GetExport(library, "cudaSetDevice");
        LibraryPath = path;
    }

    /// <summary>The library that was loaded.</summary>
    public string LibraryPath { get; }

    /// <summary>Loads libcudart from <see cref="DefaultLibraryNames"/> or beside libtorch.</summary>
    /// <param name="info">The loaded runtime, or null.</param>
    /// <param name="problem">Why it could not be loaded (names every place tried), or null.</param>
    /// <returns>Whether it loaded.</returns>
    public static bool TryLoad(out CudaMemoryInfo? info, out string? problem) =>
        TryLoad([.. DefaultLibraryNames, .. BesideLibtorch()], out info, out problem);

    /// <summary>Loads the CUDA runtime from the first of <paramref name="candidates"/> (names or paths) that loads and
    /// exports <c>cudaMemGetInfo</c>, <c>cudaGetDevice</c> and <c>cudaSetDevice</c>.</summary>
    /// <param name="candidates">Library names or paths to try, in order.</param>
    /// <param name="info">The loaded runtime, or null.</param>
    /// <param name="problem">Why none loaded, or null.</param>
    /// <returns>Whether one loaded.</returns>
    public static bool TryLoad(IReadOnlyList<string> candidates, out CudaMemoryInfo? info, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        foreach (string candidate in candidates)
        {
            if (!NativeLibrary.TryLoad(candidate, out IntPtr library)) continue;
            if (NativeLibrary.TryGetExport(library, "cudaMemGetInfo", out _) && NativeLibrary.TryGetExport(library, "cudaGetDevice", out _)
                && NativeLibrary.TryGetExport(library, "cudaSetDevice", out _))
            {
                info = new CudaMemoryInfo(library, candidate);
                problem = null;
                return true;
            }
            NativeLibrary.Free(library);
        }
        info = null;
        problem = "GPU memory is not logged: no CUDA runtime library exporting cudaMemGetInfo was found (tried " +
                  string.Join(", ", candidates) + "). Install the CUDA runtime (libcudart) or put its folder on LD_LIBRARY_PATH / PATH.";
        return false;
    }

    /// <summary>Free and total bytes of CUDA device <paramref name="device"/> (the calling thread's current device is
    /// restored afterwards).</summary>
    /// <param name="device">The device index.</param>
    /// <returns>(free, total) in bytes.</returns>
    /// <exception cref="InvalidOperationException">The runtime returned an error code.</exception>
    public (long Free, long Total) MemGetInfo(int device)
    {
        int current = 0;
        Check(_getDevice(&current), "cudaGetDevice");
        if (current != device) Check(_setDevice(device), "cudaSetDevice");
        try
        {
            nuint free = 0, total = 0;
            Check(_memGetInfo(&free, &total), "cudaMemGetInfo");
            return ((long)free, (long)total);
        }
        finally
        {
            if (current != device) _setDevice(current);
        }
    }

    private static void Check(int code, string call)
    {
        if (code != 0) throw new InvalidOperationException($"{call} returned CUDA error {code}.");
    }

    private static IEnumerable<string> BesideLibtorch()
    {
        string native = Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? "win-x64" : "linux-x64", "native");
        foreach (string folder in new[] { AppContext.BaseDirectory, native })
        {
            if (!Directory.Exists(folder)) continue;
            foreach (string file in Directory.EnumerateFiles(folder).Where(f => Path.GetFileName(f).StartsWith("libcudart", StringComparison.Ordinal)
                         || Path.GetFileName(f).StartsWith("cudart64", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal))
                yield return file;
        }
    }
}
