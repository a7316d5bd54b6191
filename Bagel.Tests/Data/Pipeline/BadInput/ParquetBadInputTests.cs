using Bagel.Data.Config;
using Bagel.Data.Diagnostics;
using Bagel.Data.Sources;
using Bagel.Tests.Data.Sources;
using Parquet;
using Parquet.Serialization;
using static Bagel.Tests.Data.Pipeline.BadInput.BadInputHarness;

namespace Bagel.Tests.Data.Pipeline.BadInput;

/// <summary>
/// Issue 4 point 7 for the parquet kinds: every bad record is a counted skip (exact counts over one pass) with a
/// warning naming its file and row, and the valid rows around it still become samples.
/// </summary>
public sealed class ParquetBadInputTests : IDisposable
{
    private const string T2I = "t2i_pretrain";
    private const string Edit = "unified_edit";
    private readonly PipelineFixture _fixture = new();
    private readonly CapturingLogger _log = new();

    public void Dispose() => _fixture.Dispose();

    private static string GoodCaptions(int id) => $"{{\"short\": \"shape {id}\", \"long\": \"a picture of shape {id}\"}}";

    private static async Task WriteT2IAsync(string path, int rowGroupSize, params (byte[]? Image, string? Captions)[] rows) =>
        await ParquetSerializer.SerializeAsync(rows.Select((r, i) => new T2IParquetSourceTests.T2IRow { image = r.Image, captions = r.Captions, extra = i }).ToList(),
            path, new ParquetOptions { RowGroupSize = rowGroupSize });

    private static (byte[], string) Good(int id) => (PipelineFixture.Png(32 + 8 * (id % 3), 40, id), GoodCaptions(id));

    private static string Row(string file, int rowGroup, int row) => $"{file} row group {rowGroup} row {row}";

    /// <summary>A real parquet file cut in half: its footer is gone.</summary>
    private static async Task WriteTruncatedShardAsync(string path)
    {
        await WriteT2IAsync(path, 2, Good(90), Good(91), Good(92));
        byte[] bytes = await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(path, bytes[..(bytes.Length / 2)], TestContext.Current.CancellationToken);
    }

    private DataSkipCounters NewSkips() => new(_log);

    [Theory]
    [NeedsSharedData("images")]
    [InlineData("corrupt_png_garbage_after_signature.png", SkipReason.CorruptImage)]
    [InlineData("corrupt_jpeg_truncated_first16384bytes_480x360.jpg", SkipReason.TruncatedImage)]
    [InlineData("corrupt_jpeg_truncated_progressive_100x100.jpg", SkipReason.TruncatedImage)]
    [InlineData("corrupt_png_truncated_idat_640x480.png", SkipReason.TruncatedImage)]
    public async Task BadImageBytesInAT2IRowAreOneCountedSkipAndTheRowsAroundThemArrive(string corruptFile, SkipReason reason)
    {
        byte[] bad = await File.ReadAllBytesAsync(SharedData.Require("images/" + corruptFile), TestContext.Current.CancellationToken);
        string dir = _fixture.Directory.Folder("t2i");
        string shard = Path.Combine(dir, "chunk_0.parquet");
        await WriteT2IAsync(shard, 2, Good(0), Good(1), (bad, GoodCaptions(2)), Good(3), Good(4));
        var skips = NewSkips();

        var built = await BuiltOriginsAsync(new T2IParquetSource(T2I, [dir], [1]), _fixture.Builder(skips, PipelineFixture.Vae), 5, skips);

        Assert.Equal([Row(shard, 0, 0), Row(shard, 0, 1), Row(shard, 1, 1), Row(shard, 2, 0)], built);
        Assert.Equal(1, skips.Count(reason, T2I));
        Assert.Equal(1, skips.Total);
        Assert.Contains(_log.Messages, m => m.StartsWith("Warning", StringComparison.Ordinal) && m.Contains(Row(shard, 1, 0), StringComparison.Ordinal) && m.Contains(reason.ToString(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task CaptionsThatAreNotAJsonObjectAreCountedSkipsAndTheRowsAroundThemArrive()
    {
        string dir = _fixture.Directory.Folder("t2i");
        string shard = Path.Combine(dir, "chunk_0.parquet");
        await WriteT2IAsync(shard, 3, Good(0), (Good(1).Item1, "\"a bare string\""), Good(2), (Good(3).Item1, "[\"a\", \"list\"]"),
            (Good(4).Item1, "{\"short\": "), (Good(5).Item1, "{\"short\": 3}"), (Good(6).Item1, null), Good(7));
        var skips = NewSkips();

        var built = await BuiltOriginsAsync(new T2IParquetSource(T2I, [dir], [1]), _fixture.Builder(skips, PipelineFixture.Vae), 8, skips);

        Assert.Equal([Row(shard, 0, 0), Row(shard, 0, 2), Row(shard, 2, 1)], built);
        Assert.Equal(5, skips.Count(SkipReason.CaptionNotObject, T2I));
        Assert.Equal(5, skips.Total);
        Assert.Contains(_log.Messages, m => m.Contains(Row(shard, 1, 0), StringComparison.Ordinal) && m.Contains("found Array", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ACorruptT2IParquetFileIsOneCountedSkipAndTheOtherFilesArrive()
    {
        string dir = _fixture.Directory.Folder("t2i");
        string a = Path.Combine(dir, "chunk_0.parquet"), b = Path.Combine(dir, "chunk_1.parquet"), c = Path.Combine(dir, "chunk_2.parquet");
        await WriteT2IAsync(a, 2, Good(0), Good(1), Good(2));
        await WriteTruncatedShardAsync(b);
        await WriteT2IAsync(c, 2, Good(3), Good(4));
        var skips = NewSkips();

        var built = await BuiltOriginsAsync(new T2IParquetSource(T2I, [dir], [3]), _fixture.Builder(skips, PipelineFixture.Vae), 5, skips);

        Assert.Equal([Row(a, 0, 0), Row(a, 0, 1), Row(a, 1, 0), Row(c, 0, 0), Row(c, 0, 1)], built);
        Assert.Equal(1, skips.Count(SkipReason.CorruptParquet, T2I));
        Assert.Equal(1, skips.Total);
        Assert.Contains(_log.Messages, m => m.Contains(b, StringComparison.Ordinal) && m.Contains("CorruptParquet", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ADamagedRowGroupIsOneCountedSkipAndTheOtherRowGroupsArrive()
    {
        string dir = _fixture.Directory.Folder("t2i");
        string shard = Path.Combine(dir, "chunk_0.parquet");
        await WriteT2IAsync(shard, 2, Good(0), Good(1), Good(2), Good(3), Good(4), Good(5));
        long start, end;
        await using (var reader = await ParquetReader.CreateAsync(shard, cancellationToken: TestContext.Current.CancellationToken))
        {
            var columns = reader.Metadata!.RowGroups[1].Columns;
            start = columns.Min(c => c.MetaData!.DataPageOffset);
            end = columns.Max(c => c.MetaData!.DataPageOffset + c.MetaData!.TotalCompressedSize);
        }
        byte[] bytes = await File.ReadAllBytesAsync(shard, TestContext.Current.CancellationToken);
        for (long i = start; i < end; i++) bytes[i] = 0xEE; // the second row group's pages, headers included, become garbage
        await File.WriteAllBytesAsync(shard, bytes, TestContext.Current.CancellationToken);
        var skips = NewSkips();

        var built = await BuiltOriginsAsync(new T2IParquetSource(T2I, [dir], [1]), _fixture.Builder(skips, PipelineFixture.Vae), 4, skips);

        Assert.Equal([Row(shard, 0, 0), Row(shard, 0, 1), Row(shard, 2, 0), Row(shard, 2, 1)], built);
        Assert.Equal(1, skips.Count(SkipReason.CorruptParquet, T2I));
        Assert.Equal(1, skips.Total);
        Assert.Contains(_log.Messages, m => m.Contains($"{shard} row group 1", StringComparison.Ordinal));
    }

    internal sealed class FlatEditRow
    {
        public List<byte[]>? image_list { get; set; }
        public List<string>? instruction_list { get; set; }
    }

    private static EditParquetSourceTests.EditRow EditChain(int id, List<List<string>>? instructions = null, byte[]? second = null) => new()
    {
        image_list = [PipelineFixture.Png(32, 48, id * 10), second ?? PipelineFixture.Png(48, 32, id * 10 + 1)],
        instruction_list = instructions ?? [[$"move shape {id}", $"shift shape {id}"]],
    };

    private static Task WriteEditAsync(string path, int rowGroupSize, params EditParquetSourceTests.EditRow[] rows) =>
        ParquetSerializer.SerializeAsync(rows.ToList(), path, new ParquetOptions { RowGroupSize = rowGroupSize });

    private async Task<List<string>> ReadEditAsync(string dir, int files, int records, DataSkipCounters skips, ParquetInfo? info = null)
    {
        var source = await EditParquetSource.CreateAsync(Edit, [dir], [files], info, null, skips, TestContext.Current.CancellationToken);
        return await BuiltOriginsAsync(source, _fixture.Builder(skips, PipelineFixture.Vae, PipelineFixture.Vit), records, skips);
    }

    [Fact]
    public async Task InstructionEntriesThatAreNotListsAreCountedSkipsAndTheOtherFilesArrive()
    {
        string dir = _fixture.Directory.Folder("edit");
        string a = Path.Combine(dir, "a.parquet"), b = Path.Combine(dir, "b.parquet"), c = Path.Combine(dir, "c.parquet");
        await WriteEditAsync(a, 2, EditChain(0), EditChain(1));
        await ParquetSerializer.SerializeAsync(new[]
        {
            new FlatEditRow { image_list = [PipelineFixture.Png(32, 32, 5), PipelineFixture.Png(32, 32, 6)], instruction_list = ["make it red"] },
            new FlatEditRow { image_list = [PipelineFixture.Png(32, 32, 7), PipelineFixture.Png(32, 32, 8)], instruction_list = ["make it blue"] },
        }, b, cancellationToken: TestContext.Current.CancellationToken);
        await WriteEditAsync(c, 2, EditChain(2));
        var skips = NewSkips();

        var built = await ReadEditAsync(dir, 3, 5, skips);

        Assert.Equal([Row(a, 0, 0), Row(a, 0, 1), Row(c, 0, 0)], built);
        Assert.Equal(2, skips.Count(SkipReason.InstructionNotList, Edit));
        Assert.Equal(2, skips.Total);
        Assert.Contains(_log.Messages, m => m.Contains(Row(b, 0, 1), StringComparison.Ordinal) && m.Contains("InstructionNotList", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnEmptyInstructionEntryAndAnEmptyInstructionListAreCountedSkips()
    {
        string dir = _fixture.Directory.Folder("edit");
        string shard = Path.Combine(dir, "chunk_0.parquet");
        await WriteEditAsync(shard, 5, EditChain(0), EditChain(1, [[]]), EditChain(2), EditChain(3, []), EditChain(4));
        var skips = NewSkips();

        var built = await ReadEditAsync(dir, 1, 5, skips);

        Assert.Equal([Row(shard, 0, 0), Row(shard, 0, 2), Row(shard, 0, 4)], built);
        Assert.Equal(1, skips.Count(SkipReason.EmptyInstructionList, Edit));
        Assert.Equal(1, skips.Count(SkipReason.BadEditChain, Edit)); // 2 images need 1 instruction entry, found none
        Assert.Equal(2, skips.Total);
    }

    [Fact]
    public async Task NullEditCellsAreCountedSkipsAndTheFirstRowOfAGroupCanBeOne()
    {
        string dir = _fixture.Directory.Folder("edit");
        string shard = Path.Combine(dir, "chunk_0.parquet");
        var nullImages = EditChain(1);
        nullImages.image_list = null;
        var nullInstructions = EditChain(3);
        nullInstructions.instruction_list = null;
        await WriteEditAsync(shard, 2, EditChain(0), EditChain(9), nullImages, EditChain(2), nullInstructions, EditChain(4));
        var skips = NewSkips();

        var built = await ReadEditAsync(dir, 1, 4, skips); // the source itself skips the null rows: 4 records per pass

        Assert.Equal([Row(shard, 0, 0), Row(shard, 0, 1), Row(shard, 1, 1), Row(shard, 2, 1)], built);
        Assert.Equal(2, skips.Count(SkipReason.BadParquetSchema, Edit));
        Assert.Equal(2, skips.Total);
    }

    [Fact]
    [NeedsSharedData("images")]
    public async Task CorruptAndTruncatedImagesInAnEditChainAreCountedSkips()
    {
        byte[] garbage = await File.ReadAllBytesAsync(SharedData.Require("images/corrupt_png_garbage_after_signature.png"), TestContext.Current.CancellationToken);
        byte[] truncated = await File.ReadAllBytesAsync(SharedData.Require("images/corrupt_jpeg_truncated_first16384bytes_480x360.jpg"), TestContext.Current.CancellationToken);
        string dir = _fixture.Directory.Folder("edit");
        string shard = Path.Combine(dir, "chunk_0.parquet");
        await WriteEditAsync(shard, 2, EditChain(0), EditChain(1, second: garbage), EditChain(2), EditChain(3, second: truncated), EditChain(4));
        var skips = NewSkips();

        var built = await ReadEditAsync(dir, 1, 5, skips);

        Assert.Equal([Row(shard, 0, 0), Row(shard, 1, 0), Row(shard, 2, 0)], built);
        Assert.Equal(1, skips.Count(SkipReason.CorruptImage, Edit));
        Assert.Equal(1, skips.Count(SkipReason.TruncatedImage, Edit));
        Assert.Equal(2, skips.Total);
        Assert.Contains(_log.Messages, m => m.Contains(Row(shard, 1, 1) + " image 1", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false, 1)] // footers: the unreadable shard is left out once, at listing
    [InlineData(true, 2)]  // parquet_info lists its 2 row groups: each fails to read, once per pass
    public async Task ACorruptEditShardIsCountedAndTheOtherShardsArrive(bool withParquetInfo, int expectedSkips)
    {
        string dir = _fixture.Directory.Folder("edit");
        string a = Path.Combine(dir, "chunk_0.parquet"), b = Path.Combine(dir, "chunk_1.parquet"), c = Path.Combine(dir, "chunk_2.parquet");
        await WriteEditAsync(a, 1, EditChain(0), EditChain(1));
        await WriteEditAsync(b, 1, EditChain(2), EditChain(3));
        await WriteEditAsync(c, 1, EditChain(4));
        string json = Path.Combine(_fixture.Directory.Path, "info.json");
        await ParquetInfo.WriteForFolderAsync(dir, json, cancellationToken: TestContext.Current.CancellationToken);
        byte[] bytes = await File.ReadAllBytesAsync(b, TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(b, bytes[..(bytes.Length / 2)], TestContext.Current.CancellationToken);
        var skips = NewSkips();

        var built = await ReadEditAsync(dir, 3, 3, skips, withParquetInfo ? ParquetInfo.Load(json) : null);

        Assert.Equal([Row(a, 0, 0), Row(a, 1, 0), Row(c, 0, 0)], built);
        Assert.Equal(expectedSkips, skips.Count(SkipReason.CorruptParquet, Edit));
        Assert.Equal(expectedSkips, skips.Total);
        Assert.Contains(_log.Messages, m => m.Contains(b, StringComparison.Ordinal) && m.Contains("CorruptParquet", StringComparison.Ordinal));
    }
}
