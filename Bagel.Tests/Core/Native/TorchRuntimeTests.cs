using Bagel.Core.Native;
using TorchSharp;

namespace Bagel.Tests.Core.Native;

public sealed class TorchRuntimeTests
{
    [Fact]
    public void EnsureLoadedLoadsTheCpuBackend()
    {
        TorchRuntime.EnsureLoaded();
        Assert.True(TorchRuntime.IsLoaded);
        using var sum = torch.ones(3).sum();
        Assert.Equal(3f, sum.item<float>());
    }

    [Fact]
    public void DiagnosisOfAnUnpatchedCopyNamesCauseAndFix()
    {
        // The loader refuses the unpatched file without side effects, so this runs in-process safely.
        string app = Directory.CreateTempSubdirectory("bagel-unpatched-").FullName;
        try
        {
            string native = Path.Combine(app, "runtimes", "linux-x64", "native");
            Directory.CreateDirectory(native);
            File.Copy(NativeLibraryFixtures.CachedLibTorchSharp, Path.Combine(native, TorchRuntime.LibTorchSharpFileName));
            var error = new TypeInitializationException("TorchSharp.torch", new NotSupportedException("load failed"));

            TorchNativeLoadException ex = TorchRuntime.Diagnose(error, app);

            Assert.Same(error, ex.InnerException);
            Assert.Contains("requires GLIBCXX_3.4.32 (a strong requirement)", ex.Message, StringComparison.Ordinal);
            Assert.Contains("provides at most GLIBCXX_3.4.", ex.Message, StringComparison.Ordinal);
            Assert.Contains("BagelPatchLibTorchSharp", ex.Message, StringComparison.Ordinal);
            Assert.Contains("Fix: reference Bagel.Core as a PackageReference", ex.Message, StringComparison.Ordinal);
            // A ProjectReference consumer is told the exact line to add (NuGet imports buildTransitive only from packages).
            Assert.Contains("ProjectReference to Bagel.Core.csproj", ex.Message, StringComparison.Ordinal);
            Assert.Contains("<Import Project=\"PATH/TO/Bagel.NET/Bagel.Core/buildTransitive/Bagel.Core.targets\" />", ex.Message, StringComparison.Ordinal);
            // The loader's own words follow (in this process they may name a missing dependency instead).
            Assert.Contains("Loader said: ", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(app, recursive: true);
        }
    }

    [Fact]
    public void DiagnosisWithoutABackendNamesTheMissingPackage()
    {
        string app = Directory.CreateTempSubdirectory("bagel-nobackend-").FullName;
        try
        {
            var ex = TorchRuntime.Diagnose(new DllNotFoundException("LibTorchSharp"), app);
            Assert.Contains("libtorch-cpu-linux-x64", ex.Message, StringComparison.Ordinal);
            Assert.Contains("no libLibTorchSharp.so was found", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(app, recursive: true);
        }
    }
}
