using Bagel.Data.Config;
using Bagel.Data.Diagnostics;
using Bagel.Data.Sources;
using Bagel.Tests.Infrastructure;
using Parquet;
using Parquet.Serialization;
using static Bagel.Tests.Data.Sources.SourceTestHelpers;

namespace Bagel.Tests.Data.Sources;

public sealed class EditParquetSourceTests
{
    internal sealed class EditRow
    {
        public List<byte[]>? image_list { get; set; }
        public List<List<string>>? instruction_list { get; set; }
    }

    private sealed class FlatEditRow
    {
        public List<byte[]>? image_list { get; set; }
        public List<string>? instruction_list { get; set; }
    }

    internal static Task WriteAsync(string path, int first, int rows, int rowGroupSize) =>
        ParquetSerializer.SerializeAsync(Enumerable.Range(first, rows).Select(i => new EditRow
        {
            image_list = [[(byte)i, 0], [(byte)i, 1], [(byte)i, 2]],
            instruction_list = [[$"step one of {i}", $"first edit {i}"], [$"step two of {i}"]],
        }).ToList(), path, new ParquetOptions { RowGroupSize = rowGroupSize });

    [Fact]
    public async Task RowGroupsAreUnitsAndNestedListsArrive()
    {
        using var dir = new TempDirectory();
        await WriteAsync(Path.Combine(dir.Path, "chunk_0.parquet"), 0, 4, 2);
        await WriteAsync(Path.Combine(dir.Path, "chunk_1.parquet"), 10, 2, 2);
        var source = await EditParquetSource.CreateAsync("unified_edit", [dir.Path], [2], parquetInfo: null, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(3, source.UnitCount);
        var samples = await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(4), null, new DataSkipCounters(), TestContext.Current.CancellationToken), 6);

        Assert.Equal(6, samples.Select(s => ((EditPayload)s.Payload).Images[0]![0]).Distinct().Count());
        var payload = (EditPayload)samples[0].Payload;
        Assert.Equal(3, payload.Images.Count);
        var first = Assert.IsType<List<string?>>(payload.Instructions[0]);
        Assert.Equal(2, first.Count);
        Assert.Equal(2, samples[0].Index.Position.Indexes.Length);
    }

    [Fact]
    public async Task ParquetInfoSuppliesRowGroupCountsAndResumeIsExact()
    {
        using var dir = new TempDirectory();
        string shards = dir.Folder("shards");
        await WriteAsync(Path.Combine(shards, "chunk_0.parquet"), 0, 5, 2);
        string json = Path.Combine(dir.Path, "info.json");
        await ParquetInfo.WriteForFolderAsync(shards, json, cancellationToken: TestContext.Current.CancellationToken);
        var source = await EditParquetSource.CreateAsync("unified_edit", [shards], [1], ParquetInfo.Load(json), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(3, source.UnitCount);

        var straight = await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(2), null, new DataSkipCounters(), TestContext.Current.CancellationToken), 8);
        var resumed = await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(2), straight[2].Index.Position, new DataSkipCounters(), TestContext.Current.CancellationToken), 5);
        Assert.Equal(straight.Skip(3).Select(s => s.Index), resumed.Select(s => s.Index));
    }

    [Fact]
    public async Task InstructionEntriesThatAreNotListsArriveAsStringsForTheBuilderToReject()
    {
        using var dir = new TempDirectory();
        await ParquetSerializer.SerializeAsync(new[] { new FlatEditRow { image_list = [[1], [2]], instruction_list = ["make it red"] } },
            Path.Combine(dir.Path, "flat.parquet"), cancellationToken: TestContext.Current.CancellationToken);
        var source = await EditParquetSource.CreateAsync("unified_edit", [dir.Path], [1], null, cancellationToken: TestContext.Current.CancellationToken);
        var sample = (await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(0), null, new DataSkipCounters(), TestContext.Current.CancellationToken), 1))[0];
        Assert.Equal("make it red", Assert.IsType<string>(((EditPayload)sample.Payload).Instructions[0]));
    }
}
