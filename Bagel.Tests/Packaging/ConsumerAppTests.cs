using System.IO.Compression;
using System.Security.Cryptography;
using Bagel.Tests.Infrastructure;

namespace Bagel.Tests.Packaging;

/// <summary>
/// Proves the native fix travels inside the Bagel.Core package: a consumer app outside this repository references
/// the packed Bagel.Core from a local folder (not a project reference) and a libtorch backend, restores into its own
/// empty NuGet cache, and runs a TorchSharp operation under `dotnet run` and `dotnet publish -r linux-x64`
/// (framework-dependent and self-contained). The cache's libLibTorchSharp.so must stay byte-identical to the signed
/// package's, and a build output holding the unpatched copy must fail with our exception.
/// Set BAGEL_PACKAGES_DIR to reuse packages from `dotnet pack -c Release -o DIR`; otherwise the test packs.
/// </summary>
public sealed class ConsumerAppTests
{
    private const string ConsumerProgram = """
        using Bagel.Core.Native;
        using TorchSharp;

        TorchRuntime.EnsureLoaded();
        using var a = torch.arange(6, dtype: torch.ScalarType.Float32).reshape(2, 3);
        using var b = a.matmul(a.t());
        Console.WriteLine($"consumer OK: {b.sum().item<float>()}");
        """;

    [Fact]
    public void PackedBagelCoreRunsTorchUnderRunAndPublishWithoutTouchingTheNuGetCache()
    {
        string work = Directory.CreateTempSubdirectory("bagel-consumer-").FullName;
        try
        {
            string packages = PackagesDirectory(work);
            string[] expected = ["Bagel.Core", "Bagel.Data", "Bagel.Models", "Bagel.Training"];
            foreach (string id in expected)
                Assert.Single(Directory.GetFiles(packages, $"{id}.*.nupkg"), p => !p.EndsWith(".symbols.nupkg", StringComparison.Ordinal));
            string coreVersion = PackageVersion(packages, "Bagel.Core");
            AssertCorePackageLayout(Path.Combine(packages, $"Bagel.Core.{coreVersion}.nupkg"));

            string app = Path.Combine(work, "consumer");
            Directory.CreateDirectory(app);
            string cache = Path.Combine(work, "nuget-cache");
            Directory.CreateDirectory(cache);
            File.WriteAllText(Path.Combine(app, "Consumer.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="Bagel.Core" Version="[{coreVersion}]" />
                    <PackageReference Include="libtorch-cpu-linux-x64" Version="[2.10.0]" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(app, "Program.cs"), ConsumerProgram);
            // Adds the local folder and keeps the machine's configured sources (no <clear/>).
            File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <add key="bagel-local" value="{packages}" />
                  </packageSources>
                </configuration>
                """);
            var env = new Dictionary<string, string> { ["NUGET_PACKAGES"] = cache };

            var run = ProcessRunner.Dotnet(app, env, "run", "-c", "Release");
            Assert.True(run.ExitCode == 0, $"dotnet run failed:\n{run.Combined}");
            Assert.Contains("consumer OK: 83", run.StandardOutput, StringComparison.Ordinal);

            string cached = Path.Combine(cache, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
            byte[] signed = PackageEntry(Path.Combine(cache, "torchsharp", "0.107.0", "torchsharp.0.107.0.nupkg"),
                                         "runtimes/linux-x64/native/libLibTorchSharp.so");
            Assert.Equal(SHA256.HashData(signed), SHA256.HashData(File.ReadAllBytes(cached)));

            foreach (bool selfContained in new[] { false, true })
            {
                string output = Path.Combine(work, selfContained ? "publish-sc" : "publish-fd");
                var publish = ProcessRunner.Dotnet(app, env, "publish", "-c", "Release", "-r", "linux-x64",
                                                   "--self-contained", selfContained ? "true" : "false", "-o", output);
                Assert.True(publish.ExitCode == 0, $"dotnet publish (self-contained={selfContained}) failed:\n{publish.Combined}");
                var started = ProcessRunner.Run(Path.Combine(output, "Consumer"), [], output, env);
                Assert.True(started.ExitCode == 0, $"published app (self-contained={selfContained}) failed:\n{started.Combined}");
                Assert.Contains("consumer OK: 83", started.StandardOutput, StringComparison.Ordinal);
            }
            Assert.Equal(SHA256.HashData(signed), SHA256.HashData(File.ReadAllBytes(cached)));

            // `dotnet test` of a user's own test project that references the package.
            string tests = Path.Combine(work, "consumer-tests");
            Directory.CreateDirectory(tests);
            File.WriteAllText(Path.Combine(tests, "ConsumerTests.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <TargetFramework>net10.0</TargetFramework>
                    <OutputType>Exe</OutputType>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="Bagel.Core" Version="[{coreVersion}]" />
                    <PackageReference Include="libtorch-cpu-linux-x64" Version="[2.10.0]" />
                    <PackageReference Include="xunit.v3" Version="[4.0.2]" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(tests, "TorchTest.cs"), """
                using Bagel.Core.Native;
                using TorchSharp;
                using Xunit;

                public class TorchTest
                {
                    [Fact]
                    public void MatmulRuns()
                    {
                        TorchRuntime.EnsureLoaded();
                        using var a = torch.ones(2, 2);
                        Assert.Equal(8f, a.matmul(a).sum().item<float>());
                    }
                }
                """);
            File.WriteAllText(Path.Combine(tests, "global.json"), """{"test": {"runner": "Microsoft.Testing.Platform"}}""");
            File.Copy(Path.Combine(app, "nuget.config"), Path.Combine(tests, "nuget.config"));
            var test = ProcessRunner.Dotnet(tests, env, "test");
            Assert.True(test.ExitCode == 0, $"dotnet test of a consumer test project failed:\n{test.Combined}");
            Assert.Contains("succeeded: 1", test.Combined, StringComparison.Ordinal);

            // Put the unpatched library back into a published output: the app must fail with our exception.
            string broken = Path.Combine(work, "publish-fd");
            File.Copy(cached, Path.Combine(broken, "libLibTorchSharp.so"), overwrite: true);
            var failed = ProcessRunner.Run(Path.Combine(broken, "Consumer"), [], broken, env);
            Assert.NotEqual(0, failed.ExitCode);
            Assert.Contains("Bagel.Core.Native.TorchNativeLoadException", failed.StandardError, StringComparison.Ordinal);
            Assert.Contains("requires GLIBCXX_3.4.32 (a strong requirement)", failed.StandardError, StringComparison.Ordinal);
            Assert.Contains("Fix: reference Bagel.Core as a PackageReference", failed.StandardError, StringComparison.Ordinal);
            Assert.Contains("version `GLIBCXX_3.4.32' not found", failed.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static string PackagesDirectory(string work)
    {
        string? given = Environment.GetEnvironmentVariable("BAGEL_PACKAGES_DIR");
        if (!string.IsNullOrEmpty(given)) return Path.GetFullPath(given);
        string output = Path.Combine(work, "packages");
        var pack = ProcessRunner.Dotnet(SharedData.RepositoryRoot, null, "pack", "Bagel.sln", "-c", "Release", "-o", output);
        Assert.True(pack.ExitCode == 0, $"dotnet pack failed:\n{pack.Combined}");
        return output;
    }

    private static string PackageVersion(string packages, string id)
    {
        string file = Path.GetFileNameWithoutExtension(Directory.GetFiles(packages, $"{id}.*.nupkg").Single());
        return file[(id.Length + 1)..];
    }

    private static void AssertCorePackageLayout(string nupkg)
    {
        using ZipArchive zip = ZipFile.OpenRead(nupkg);
        var names = zip.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Contains("buildTransitive/Bagel.Core.targets", names);
        Assert.Contains("buildTransitive/BagelElfPatch.cs", names);
        Assert.Contains("lib/net10.0/Bagel.Core.dll", names);
        Assert.Contains("lib/net10.0/Bagel.Core.xml", names);
        Assert.Contains("README.md", names);
    }

    private static byte[] PackageEntry(string nupkg, string entry)
    {
        using ZipArchive zip = ZipFile.OpenRead(nupkg);
        ZipArchiveEntry found = zip.GetEntry(entry) ?? throw new InvalidOperationException($"'{entry}' not in '{nupkg}'");
        using var stream = found.Open();
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }
}
