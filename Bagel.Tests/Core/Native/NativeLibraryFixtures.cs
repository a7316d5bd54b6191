namespace Bagel.Tests.Core.Native;

/// <summary>Paths of TorchSharp's native bridge as NuGet restored it and as our build step copied it.</summary>
internal static class NativeLibraryFixtures
{
    /// <summary>The NuGet global packages folder this test run restored from.</summary>
    public static string GlobalPackagesFolder =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } env
            ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>The unpatched library in the NuGet cache (only ever read).</summary>
    public static string CachedLibTorchSharp
    {
        get
        {
            string path = Path.Combine(GlobalPackagesFolder, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
            if (!File.Exists(path)) Assert.Skip($"The NuGet cache copy '{path}' is absent (restored elsewhere?).");
            return path;
        }
    }

    /// <summary>The copy in this test assembly's output folder, written by Bagel.Core.targets.</summary>
    public static string OutputLibTorchSharp
    {
        get
        {
            string path = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
            if (!File.Exists(path)) path = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
            Assert.True(File.Exists(path), $"no libLibTorchSharp.so in the test output folder '{AppContext.BaseDirectory}'");
            return path;
        }
    }
}
