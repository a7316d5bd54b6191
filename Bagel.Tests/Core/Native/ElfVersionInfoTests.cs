using Bagel.Core.Native;

namespace Bagel.Tests.Core.Native;

public sealed class ElfVersionInfoTests
{
    [Fact]
    public void CachedLibraryHasStrongGlibcxx3432Need()
    {
        var needs = ElfVersionInfo.ReadVersionNeeds(NativeLibraryFixtures.CachedLibTorchSharp);
        var need = Assert.Single(needs, n => n.Version == "GLIBCXX_3.4.32");
        Assert.Equal("libstdc++.so.6", need.Library);
        Assert.False(need.IsWeak);
    }

    [Fact]
    public void BuildOutputCopyIsPatchedAndDiffersByExactlyOneByte()
    {
        byte[] original = File.ReadAllBytes(NativeLibraryFixtures.CachedLibTorchSharp);
        byte[] patched = File.ReadAllBytes(NativeLibraryFixtures.OutputLibTorchSharp);
        Assert.Equal(original.Length, patched.Length);
        int[] differing = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToArray();
        var need = Assert.Single(ElfVersionInfo.ReadVersionNeeds(NativeLibraryFixtures.OutputLibTorchSharp), n => n.Version == "GLIBCXX_3.4.32");
        Assert.True(need.IsWeak);
        Assert.Equal([need.FlagsOffset], differing.Select(i => (long)i));
        // Every other requirement is untouched.
        var before = ElfVersionInfo.ReadVersionNeeds(NativeLibraryFixtures.CachedLibTorchSharp).Where(n => n.Version != "GLIBCXX_3.4.32");
        var after = ElfVersionInfo.ReadVersionNeeds(NativeLibraryFixtures.OutputLibTorchSharp).Where(n => n.Version != "GLIBCXX_3.4.32");
        Assert.Equal(before.Select(n => (n.Library, n.Version, n.Flags)), after.Select(n => (n.Library, n.Version, n.Flags)));
    }

    [Fact]
    public void WriteWeakenedCopyLeavesSourceUntouchedAndIsIdempotent()
    {
        string dir = Directory.CreateTempSubdirectory("bagel-elf-").FullName;
        try
        {
            string source = Path.Combine(dir, "source.so");
            File.Copy(NativeLibraryFixtures.CachedLibTorchSharp, source);
            byte[] sourceBytes = File.ReadAllBytes(source);
            string destination = Path.Combine(dir, "out", "patched.so");

            var changed = ElfVersionInfo.WriteWeakenedCopy(source, destination, ["GLIBCXX_3.4.32"]);
            Assert.Equal(["libstdc++.so.6:GLIBCXX_3.4.32"], changed);
            Assert.Equal(sourceBytes, File.ReadAllBytes(source));

            var again = ElfVersionInfo.WriteWeakenedCopy(destination, destination + ".2", ["GLIBCXX_3.4.32"]);
            Assert.Empty(again);
            Assert.Equal(File.ReadAllBytes(destination), File.ReadAllBytes(destination + ".2"));
            Assert.Empty(Directory.GetFiles(Path.Combine(dir, "out"), "*.tmp"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void SystemLibstdcxxDefinitionsAreReadable()
    {
        string path = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
        if (!File.Exists(path)) Assert.Skip($"'{path}' is absent on this machine.");
        var versions = ElfVersionInfo.ReadVersionDefinitions(path);
        Assert.Contains("GLIBCXX_3.4", versions);
        Assert.Contains("CXXABI_1.3", versions);
    }

    [Fact]
    public void NonElfFileGivesClearError()
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "not an ELF file at all, but long enough to hold a header of sixty-four bytes......");
            var ex = Assert.Throws<ElfFormatException>(() => ElfVersionInfo.ReadVersionNeeds(file));
            Assert.Contains(file, ex.Message, StringComparison.Ordinal);
            Assert.Contains("bad magic", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
