using System.Runtime.InteropServices;
using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>dlopen with RTLD_GLOBAL, setenv, and the data pointer of a TorchSharp tensor (which TorchSharp does not expose).</summary>
internal static unsafe class NativeInterop
{
    private const int RtldNow = 2, RtldGlobal = 0x100, RtldNoLoad = 4;
    private static readonly object Gate = new();
    private static delegate* unmanaged<IntPtr, IntPtr> _tensorData;

    /// <summary>Opens <paramref name="name"/> with RTLD_NOW | RTLD_GLOBAL (Open MPI's plugins resolve symbols of libmpi), or returns false.</summary>
    public static bool TryOpenGlobal(string name, out IntPtr handle, out string? error)
    {
        IntPtr libdl = LibDl();
        var dlopen = (delegate* unmanaged<byte*, int, IntPtr>)NativeLibrary.GetExport(libdl, "dlopen");
        var dlerror = (delegate* unmanaged<byte*>)NativeLibrary.GetExport(libdl, "dlerror");
        IntPtr text = Marshal.StringToCoTaskMemUTF8(name);
        try
        {
            handle = dlopen((byte*)text, RtldNow | RtldGlobal);
            error = handle == IntPtr.Zero ? Marshal.PtrToStringUTF8((IntPtr)dlerror()) : null;
            return handle != IntPtr.Zero;
        }
        finally
        {
            Marshal.FreeCoTaskMem(text);
        }
    }

    /// <summary>Sets a variable in the native environment (which native libraries read), unless it is set already.</summary>
    public static void SetEnvironmentDefault(string name, string value)
    {
        if (Environment.GetEnvironmentVariable(name) is not null) return;
        IntPtr libc = NativeLibrary.Load("libc.so.6");
        var setenv = (delegate* unmanaged<byte*, byte*, int, int>)NativeLibrary.GetExport(libc, "setenv");
        IntPtr n = Marshal.StringToCoTaskMemUTF8(name), v = Marshal.StringToCoTaskMemUTF8(value);
        try
        {
            _ = setenv((byte*)n, (byte*)v, 0);
        }
        finally
        {
            Marshal.FreeCoTaskMem(n);
            Marshal.FreeCoTaskMem(v);
        }
        Environment.SetEnvironmentVariable(name, value);
    }

    /// <summary>
    /// The address of <paramref name="tensor"/>'s first element (storage pointer plus the view's offset), on its device:
    /// libtorch's <c>data_ptr()</c>, read through LibTorchSharp's <c>THSTensor_data</c>.
    /// </summary>
    public static IntPtr DataPointer(torch.Tensor tensor)
    {
        if (_tensorData == null)
        {
            lock (Gate)
            {
                if (_tensorData == null)
                {
                    using (torch.zeros(1)) { } // makes sure TorchSharp has loaded its native library
                    _tensorData = (delegate* unmanaged<IntPtr, IntPtr>)NativeLibrary.GetExport(LibTorchSharp(), "THSTensor_data");
                }
            }
        }
        return _tensorData(tensor.Handle);
    }

    private static IntPtr LibTorchSharp()
    {
        IntPtr libdl = LibDl();
        var dlopen = (delegate* unmanaged<byte*, int, IntPtr>)NativeLibrary.GetExport(libdl, "dlopen");
        IntPtr text = Marshal.StringToCoTaskMemUTF8("libLibTorchSharp.so");
        try
        {
            IntPtr handle = dlopen((byte*)text, RtldNow | RtldNoLoad);
            if (handle != IntPtr.Zero) return handle;
        }
        finally
        {
            Marshal.FreeCoTaskMem(text);
        }
        // Not found by its name: look for the loaded file's path in this process's mappings.
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            int slash = line.IndexOf('/', StringComparison.Ordinal);
            if (slash >= 0 && line.EndsWith("/libLibTorchSharp.so", StringComparison.Ordinal)) return NativeLibrary.Load(line[slash..]);
        }
        throw new DistributedException("LibTorchSharp is not loaded in this process, so tensor data pointers cannot be read; create a tensor first (TorchRuntime.EnsureLoaded).");
    }

    private static IntPtr LibDl() =>
        NativeLibrary.TryLoad("libdl.so.2", out IntPtr handle) ? handle : NativeLibrary.Load("libc.so.6");
}
