using Bagel.Data.Diagnostics;
using Bagel.Data.Sources;
using Bagel.Tests.Infrastructure;
using Parquet;
using Parquet.Serialization;
using static Bagel.Tests.Data.Sources.SourceTestHelpers;

namespace Bagel.Tests.Data.Sources;

public sealed class T2IParquetSourceTests
{
    internal sealed class T2IRow
    {
        public byte[]? image { get; set; }
        public string? captions { get; set; }
        public long extra { get; set; }
    }

    internal static async Task WriteShardAsync(string path, int firstId, int rows, int rowGroupSize)
    {
        var data = Enumerable.Range(firstId, rows).Select(i => new T2IRow { image = [(byte)i, 7], captions = $"{{\"short\": \"caption {i}\"}}", extra = i }).ToList();
        await ParquetSerializer.SerializeAsync(data, path, new ParquetOptions { RowGroupSize = rowGroupSize });
    }

    [Fact]
    public async Task ReadsEveryRowGroupWithPositionsAndWrapsAround()
    {
        using var dir = new TempDirectory();
        await WriteShardAsync(Path.Combine(dir.Path, "chunk_0.parquet"), firstId: 0, rows: 5, rowGroupSize: 2);
        var source = new T2IParquetSource("t2i_pretrain", [dir.Path], [1]);
        var skips = new DataSkipCounters();

        var samples = await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(1), null, skips, TestContext.Current.CancellationToken), 7);

        Assert.Equal([0, 1, 2, 3, 4, 0, 1], samples.Select(s => (int)((T2IPayload)s.Payload).Image![0]));
        Assert.Equal([0L, 2, 0], samples[4].Index.Position.Indexes);   // file 0, row group 2, row 0 (rows are absolute in their group)
        Assert.Equal([0L, 1, 1], samples[3].Index.Position.Indexes);
        Assert.Equal("{\"short\": \"caption 3\"}", ((T2IPayload)samples[3].Payload).Captions);
        Assert.Contains("chunk_0.parquet row group 1 row 1", samples[3].Origin, StringComparison.Ordinal);
        Assert.Equal(0, skips.Total);
    }

    [Fact]
    public async Task ResumeContinuesWithTheNextRow()
    {
        using var dir = new TempDirectory();
        await WriteShardAsync(Path.Combine(dir.Path, "a.parquet"), 0, 5, 2);
        await WriteShardAsync(Path.Combine(dir.Path, "b.parquet"), 10, 3, 2);
        var source = new T2IParquetSource("t2i_pretrain", [dir.Path], [2]);
        var straight = await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(3), null, new DataSkipCounters(), TestContext.Current.CancellationToken), 12);

        for (int cut = 0; cut < 11; cut++)
        {
            var resumed = await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(3), straight[cut].Index.Position, new DataSkipCounters(), TestContext.Current.CancellationToken), 12 - cut - 1);
            Assert.Equal(straight.Skip(cut + 1).Select(s => s.Index), resumed.Select(s => s.Index));
        }
    }

    [Fact]
    public async Task CorruptFileIsACountedSkipAndNeighboursStillArrive()
    {
        using var dir = new TempDirectory();
        await WriteShardAsync(Path.Combine(dir.Path, "a.parquet"), 0, 2, 2);
        File.WriteAllBytes(Path.Combine(dir.Path, "b.parquet"), [.. "PAR1"u8, 1, 2, 3, 4, 5, .. "PAR1"u8]);
        await WriteShardAsync(Path.Combine(dir.Path, "c.parquet"), 20, 2, 2);
        var source = new T2IParquetSource("t2i_pretrain", [dir.Path], [3]);
        var skips = new DataSkipCounters();

        var samples = await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(0), null, skips, TestContext.Current.CancellationToken), 4);

        Assert.Equal([0, 1, 20, 21], samples.Select(s => (int)((T2IPayload)s.Payload).Image![0]).Order());
        Assert.Equal(1, skips.Count(SkipReason.CorruptParquet));
    }

    [Fact]
    public async Task MissingColumnsAreACountedSchemaSkip()
    {
        using var dir = new TempDirectory();
        await ParquetSerializer.SerializeAsync(new[] { new { picture = new byte[] { 1 } } }, Path.Combine(dir.Path, "bad.parquet"), cancellationToken: TestContext.Current.CancellationToken);
        await WriteShardAsync(Path.Combine(dir.Path, "good.parquet"), 5, 1, 1);
        var source = new T2IParquetSource("t2i_pretrain", [dir.Path], [2]);
        var skips = new DataSkipCounters();

        var samples = await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(0), null, skips, TestContext.Current.CancellationToken), 2);

        Assert.All(samples, s => Assert.Equal(5, ((T2IPayload)s.Payload).Image![0]));
        Assert.True(skips.Count(SkipReason.BadParquetSchema) >= 1);
    }

    [Fact]
    public async Task AnAllBadSourceIsAnErrorNotAHang()
    {
        using var dir = new TempDirectory();
        File.WriteAllBytes(Path.Combine(dir.Path, "b.parquet"), [1, 2, 3]);
        var source = new T2IParquetSource("t2i_pretrain", [dir.Path], [1]);
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(0), null, new DataSkipCounters(), TestContext.Current.CancellationToken), 1));
        Assert.Contains("yielded no valid record", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ShardingGivesDisjointWorkerSlicesAndNamesTheCountsWhenTooFew()
    {
        var units = Enumerable.Range(0, 10).Select(i => $"f{i:00}").ToList();
        var slices = Enumerable.Range(0, 2).SelectMany(rank => Enumerable.Range(0, 2).Select(w =>
            UnitSharding.Slice(units, StringComparer.Ordinal, Seeded(42), new WorkerSlice(rank, 2, w, 2), "t2i"))).ToList();
        Assert.All(slices, s => Assert.Equal(2, s.Count));                   // 10 / 2 ranks = 5, / 2 workers = 2 (remainders dropped)
        Assert.Equal(8, slices.SelectMany(s => s).Distinct().Count());
        var ex = Assert.Throws<InvalidOperationException>(() => UnitSharding.Slice(units.Take(3).ToList(), StringComparer.Ordinal, Seeded(1), new WorkerSlice(0, 2, 1, 2), "t2i"));
        Assert.Contains("has 3 units", ex.Message, StringComparison.Ordinal);
    }
}
