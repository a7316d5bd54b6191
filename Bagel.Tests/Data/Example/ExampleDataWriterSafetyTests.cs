using Bagel.Data.Config;
using Bagel.Data.Example;
using Bagel.Data.Images;
using Bagel.Tests.Infrastructure;

namespace Bagel.Tests.Data.Example;

/// <summary>Determinism, the atomic write, option checks and the non-default encodings.</summary>
public sealed class ExampleDataWriterSafetyTests
{
    private static ExampleDataOptions Small(string folder, int seed = 3) => new()
    {
        OutputFolder = folder,
        Seed = seed,
        T2IFiles = 2,
        T2IRowsPerFile = 3,
        T2IRowsPerRowGroup = 2,
        EditFiles = 1,
        EditRowsPerFile = 4,
        EditRowsPerRowGroup = 2,
        VlmLines = 5,
        NoiseAmplitude = 8,
    };

    [Fact]
    public async Task SameSeedGivesByteIdenticalFilesWhateverTheParallelism()
    {
        using var dir = new TempDirectory();
        var ct = TestContext.Current.CancellationToken;
        await new ExampleDataWriter(Small(Path.Combine(dir.Path, "a")) with { MaxDegreeOfParallelism = 1 }).WriteAsync(cancellationToken: ct);
        await new ExampleDataWriter(Small(Path.Combine(dir.Path, "b")) with { MaxDegreeOfParallelism = 3 }).WriteAsync(cancellationToken: ct);
        await new ExampleDataWriter(Small(Path.Combine(dir.Path, "c"), seed: 4)).WriteAsync(cancellationToken: ct);

        var a = Snapshot(Path.Combine(dir.Path, "a"));
        var b = Snapshot(Path.Combine(dir.Path, "b"));
        var c = Snapshot(Path.Combine(dir.Path, "c"));
        Assert.Equal(a.Keys, b.Keys);
        Assert.All(a, file => Assert.True(file.Value.SequenceEqual(b[file.Key]), $"{file.Key} differs between two writes with the same seed"));
        Assert.Equal(ExampleDataWriter.TotalFiles(Small("x")), a.Count);
        // Another seed changes the content (the YAML files and parquet_info stay the same).
        Assert.False(a["t2i/chunk_0.parquet"].SequenceEqual(c["t2i/chunk_0.parquet"]));
        Assert.False(a["vlm/llava_ov_si.jsonl"].SequenceEqual(c["vlm/llava_ov_si.jsonl"]));
    }

    [Fact]
    public async Task CancellingMidWriteLeavesNothingBehind()
    {
        using var dir = new TempDirectory();
        using var cts = new CancellationTokenSource();
        var seen = new List<ExampleDataProgress>();
        var progress = new Callback(p =>
        {
            seen.Add(p);
            if (p.FilesWritten == 3) cts.Cancel();
        });
        var writer = new ExampleDataWriter(Small(Path.Combine(dir.Path, "new-parent", "bagel_example")));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => writer.WriteAsync(progress, cts.Token));

        Assert.Equal(3, seen.Count);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public async Task AnExistingFolderIsKeptUnlessOverwriteIsSet()
    {
        using var dir = new TempDirectory();
        string target = dir.File("bagel_example/keep.txt", "mine");
        string folder = Path.GetDirectoryName(target)!;

        var error = await Assert.ThrowsAsync<DataConfigException>(() => new ExampleDataWriter(Small(folder)).WriteAsync(cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("already exists", error.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(target));

        var summary = await new ExampleDataWriter(Small(folder) with { Overwrite = true }).WriteAsync(cancellationToken: TestContext.Current.CancellationToken);
        Assert.False(File.Exists(target));
        Assert.True(File.Exists(summary.MixConfigPath));
        Assert.Equal(["bagel_example"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void BadOptionsAreReportedTogetherByName()
    {
        var options = new ExampleDataOptions { OutputFolder = "x", T2IFiles = 0, JpegQuality = 101, EditMaxChainLength = 1 };
        var error = Assert.Throws<DataConfigAggregateException>(() => new ExampleDataWriter(options));
        Assert.Equal(["ExampleDataOptions.T2IFiles", "ExampleDataOptions.EditMaxChainLength", "ExampleDataOptions.JpegQuality"],
                     error.Errors.Select(e => e.KeyPath));
    }

    [Fact]
    public void LargePresetHasTheReferenceShape()
    {
        var large = ExampleDataOptions.Large("big");
        large.Validate();
        Assert.Equal((1000, 1000, 1000), (large.T2IFiles * large.T2IRowsPerFile, large.EditFiles * large.EditRowsPerFile, large.VlmLines));
        Assert.Equal((10, 10), (large.EditFiles, large.EditRowsPerFile / large.EditRowsPerRowGroup));
        Assert.Equal((1024, 1024, ExampleImageFormat.Jpeg), (large.MinImageSide, large.MaxImageSide, large.T2IImageFormat));
        Assert.Equal(10 + 10 + 1 + 1000 + 1 + 2, ExampleDataWriter.TotalFiles(large));
    }

    [Fact]
    public async Task FixedSizeJpegPicturesDecodeToThatSize()
    {
        using var dir = new TempDirectory();
        var options = Small(Path.Combine(dir.Path, "jpeg")) with
        {
            MinImageSide = 48,
            MaxImageSide = 48,
            T2IImageFormat = ExampleImageFormat.Jpeg,
            EditImageFormat = ExampleImageFormat.Jpeg,
            VlmImageFormat = ExampleImageFormat.Png,
            JpegQuality = 75,
        };
        var summary = await new ExampleDataWriter(options).WriteAsync(cancellationToken: TestContext.Current.CancellationToken);

        var decoder = new ImageDecoder();
        var png = Directory.GetFiles(Path.Combine(summary.Folder, ExampleDataLayout.VlmImagesFolder));
        Assert.Equal(options.VlmLines, png.Length);
        Assert.All(png, f =>
        {
            Assert.EndsWith(".png", f, StringComparison.Ordinal);
            var image = decoder.DecodeFile(f);
            Assert.Equal((48, 48), (image.Width, image.Height));
        });
        await using var shard = File.OpenRead(Path.Combine(summary.Folder, "t2i", "chunk_0.parquet"));
        var rows = await Parquet.Serialization.ParquetSerializer.DeserializeUntypedAsync(shard, cancellationToken: TestContext.Current.CancellationToken);
        var jpeg = (byte[])rows.Data[0]["image"];
        Assert.Equal([0xFF, 0xD8], jpeg[..2]); // JPEG start-of-image marker
        var decoded = decoder.Decode(jpeg, "t2i row 0");
        Assert.Equal((48, 48), (decoded.Width, decoded.Height));
    }

    private static Dictionary<string, byte[]> Snapshot(string folder) =>
        Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .ToDictionary(f => Path.GetRelativePath(folder, f).Replace('\\', '/'), File.ReadAllBytes);

    private sealed class Callback(Action<ExampleDataProgress> report) : IProgress<ExampleDataProgress>
    {
        public void Report(ExampleDataProgress value) => report(value);
    }
}
