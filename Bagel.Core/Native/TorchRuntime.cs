using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;

namespace Bagel.Core.Native;

/// <summary>
/// Loads TorchSharp's native backend once and turns a failure into one <see cref="TorchNativeLoadException"/>
/// that names the cause and the fix, instead of TorchSharp's <see cref="TypeInitializationException"/>.
/// Every Bagel.NET entry point that touches tensors calls <see cref="EnsureLoaded()"/> first.
/// </summary>
public static class TorchRuntime
{
    /// <summary>The file name of TorchSharp's native bridge library on Linux.</summary>
    public const string LibTorchSharpFileName = "libLibTorchSharp.so";

    /// <summary>The version requirement Bagel.Core's build step weakens (see <c>Bagel.Core.targets</c>).</summary>
    public const string PatchedVersionNeed = "GLIBCXX_3.4.32";

    /// <summary>The line a project that references Bagel.Core.csproj as a ProjectReference adds to get the native
    /// fix (NuGet imports <c>buildTransitive</c> targets only from packages); the path is relative to the clone.</summary>
    public const string ProjectReferenceImportHint =
        "<Import Project=\"PATH/TO/Bagel.NET/Bagel.Core/buildTransitive/Bagel.Core.targets\" />";

    private static readonly Lock Gate = new();
    private static bool _loaded;
    private static TorchNativeLoadException? _failure;

    /// <summary>Whether the native backend has loaded in this process.</summary>
    public static bool IsLoaded
    {
        get { lock (Gate) return _loaded; }
    }

    /// <summary>
    /// Loads the CPU backend (idempotent, thread-safe). Throws <see cref="TorchNativeLoadException"/> with a
    /// diagnosis when the native library cannot load; the same exception is thrown again on later calls.
    /// </summary>
    /// <exception cref="TorchNativeLoadException">The native library could not be loaded.</exception>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_loaded) return;
            if (_failure is not null) throw _failure;
            try
            {
                torch.InitializeDeviceType(DeviceType.CPU);
                using var probe = torch.zeros(1);
                _loaded = true;
            }
            catch (Exception ex) when (ex is TypeInitializationException or DllNotFoundException or NotSupportedException
                                           or InvalidOperationException or EntryPointNotFoundException or BadImageFormatException)
            {
                _failure = Diagnose(ex, AppContext.BaseDirectory);
                throw _failure;
            }
        }
    }

    /// <summary>
    /// Loads the CUDA backend for <paramref name="device"/> when it is a CUDA device, after the CPU backend.
    /// </summary>
    /// <param name="device">The device the caller is about to use.</param>
    /// <exception cref="TorchNativeLoadException">The native library or the CUDA backend could not be loaded.</exception>
    public static void EnsureLoaded(torch.Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        EnsureLoaded();
        if (device.type != DeviceType.CUDA) return;
        try
        {
            torch.InitializeDeviceType(DeviceType.CUDA);
        }
        catch (Exception ex) when (ex is InvalidOperationException or NotSupportedException or DllNotFoundException)
        {
            throw new TorchNativeLoadException(
                $"Device '{device}' was requested, but TorchSharp's CUDA backend did not initialise: {FirstLine(ex.Message)}\n" +
                "Fix: build the application with -p:BagelTorchBackend=cuda (references libtorch-cuda-12.8-linux-x64), on a machine " +
                "with an NVIDIA driver for CUDA 12.8, or choose device 'cpu'.", ex);
        }
    }

    /// <summary>
    /// Explains why the native library did not load: looks for <c>libLibTorchSharp.so</c> under
    /// <paramref name="appDirectory"/>, tries to load it to capture the loader's own message, and compares its
    /// libstdc++ version requirements with the versions the system's libstdc++ defines.
    /// </summary>
    /// <param name="error">The exception TorchSharp raised.</param>
    /// <param name="appDirectory">The application's base directory.</param>
    /// <returns>The exception to throw.</returns>
    public static TorchNativeLoadException Diagnose(Exception error, string appDirectory)
    {
        ArgumentNullException.ThrowIfNull(error);
        var message = new StringBuilder("Bagel.NET could not load TorchSharp's native backend.\n");
        string? library = FindLibTorchSharp(appDirectory);
        if (library is null)
        {
            message.Append($"Cause: no {LibTorchSharpFileName} was found under '{appDirectory}'. The application references no libtorch backend package.\n");
            message.Append("Fix: add a backend to the project that builds the executable, e.g. " +
                           "<PackageReference Include=\"libtorch-cpu-linux-x64\" Version=\"2.10.0\" /> (CPU) or " +
                           "libtorch-cuda-12.8-linux-x64 2.10.0 (CUDA), then rebuild.\n");
            message.Append("TorchSharp said: ").Append(InnermostMessage(error));
            return new TorchNativeLoadException(message.ToString(), error);
        }

        string loaderMessage = TryLoad(library);
        List<ElfVersionNeed> strongMissing = [];
        string? libstdcxx = FindLoadedLibrary("libstdc++.so.6");
        string? newestGlibcxx = null;
        try
        {
            HashSet<string> provided = libstdcxx is null ? [] : [.. ElfVersionInfo.ReadVersionDefinitions(libstdcxx)];
            newestGlibcxx = provided.Where(v => v.StartsWith("GLIBCXX_", StringComparison.Ordinal))
                                    .OrderBy(v => v, GlibcxxVersionComparer.Instance).LastOrDefault();
            strongMissing = ElfVersionInfo.ReadVersionNeeds(library)
                .Where(n => !n.IsWeak && n.Library.StartsWith("libstdc++", StringComparison.Ordinal) && !provided.Contains(n.Version))
                .ToList();
        }
        catch (Exception ex) when (ex is ElfFormatException or IOException or UnauthorizedAccessException)
        {
            message.Append($"(could not inspect ELF version information: {ex.Message})\n");
        }

        if (strongMissing.Count > 0)
        {
            string needs = string.Join(", ", strongMissing.Select(n => n.Version));
            message.Append($"Cause: '{library}' requires {needs} (a strong requirement), but this system's libstdc++ " +
                           $"('{libstdcxx}') provides at most {newestGlibcxx ?? "no GLIBCXX version"}.\n");
            message.Append($"Bagel.Core's build step (target BagelPatchLibTorchSharp in Bagel.Core.targets) writes a copy with {PatchedVersionNeed} " +
                           "marked weak into the build output; this copy was not produced by it.\n");
            message.Append("Fix: reference Bagel.Core as a PackageReference (or import Bagel.Core.targets) in the project that builds the executable, " +
                           "make sure BagelPatchLibTorchSharp is not set to false, and rebuild (dotnet build / dotnet publish). " +
                           "Alternatively install a libstdc++ from GCC 13 or later.\n");
            message.Append("A ProjectReference to Bagel.Core.csproj (source, not the package) does not bring the build step with it: " +
                           "NuGet imports buildTransitive targets only from packages. Add to the executable's project file " +
                           $"{ProjectReferenceImportHint} and rebuild.\n");
        }
        else
        {
            message.Append($"Cause: the dynamic loader rejected '{library}'.\n");
            message.Append("Fix: check that TorchSharp 0.107.0 is paired with libtorch 2.10.0 (libtorch-cpu-linux-x64 or libtorch-cuda-12.8-linux-x64) " +
                           "and that the build output is complete.\n");
        }
        message.Append("Loader said: ").Append(loaderMessage.Length > 0 ? loaderMessage : InnermostMessage(error));
        return new TorchNativeLoadException(message.ToString(), error);
    }

    private static string? FindLibTorchSharp(string appDirectory)
    {
        string direct = Path.Combine(appDirectory, LibTorchSharpFileName);
        if (File.Exists(direct)) return direct;
        string rid = RuntimeInformation.RuntimeIdentifier;
        foreach (string candidate in new[] { rid, "linux-x64", "linux-arm64" })
        {
            string path = Path.Combine(appDirectory, "runtimes", candidate, "native", LibTorchSharpFileName);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    private static string TryLoad(string library)
    {
        try
        {
            IntPtr handle = NativeLibrary.Load(library);
            NativeLibrary.Free(handle);
            return string.Empty;
        }
        catch (DllNotFoundException ex)
        {
            return ex.Message;
        }
    }

    private static string? FindLoadedLibrary(string fileName)
    {
        // The .NET runtime itself links libstdc++, so the one the loader uses is mapped into this process.
        try
        {
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash >= 0 && line.EndsWith("/" + fileName, StringComparison.Ordinal)) return line[slash..];
            }
        }
        catch (IOException)
        {
        }
        foreach (string dir in new[] { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/aarch64-linux-gnu", "/usr/lib" })
        {
            string path = Path.Combine(dir, fileName);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    private static string InnermostMessage(Exception ex)
    {
        while (ex.InnerException is not null) ex = ex.InnerException;
        return FirstLine(ex.Message);
    }

    private static string FirstLine(string text)
    {
        int newline = text.IndexOf('\n', StringComparison.Ordinal);
        return newline < 0 ? text : text[..newline];
    }

    private sealed class GlibcxxVersionComparer : IComparer<string>
    {
        public static readonly GlibcxxVersionComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            int[] a = Parts(x), b = Parts(y);
            for (int i = 0; i < Math.Max(a.Length, b.Length); i++)
            {
                int c = (i < a.Length ? a[i] : 0).CompareTo(i < b.Length ? b[i] : 0);
                if (c != 0) return c;
            }
            return 0;
        }

        private static int[] Parts(string? version) =>
            (version ?? string.Empty).Replace("GLIBCXX_", string.Empty, StringComparison.Ordinal)
                .Split('.').Select(p => int.TryParse(p, out int n) ? n : 0).ToArray();
    }
}

/// <summary>TorchSharp's native backend could not be loaded; the message names the cause and the fix.</summary>
public sealed class TorchNativeLoadException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Cause and fix.</param>
    /// <param name="innerException">What TorchSharp or the loader raised.</param>
    public TorchNativeLoadException(string message, Exception? innerException) : base(message, innerException)
    {
    }
}
