using Bagel.Data.Config;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Data.Sources;

namespace Bagel.Tests.Data.Config;

public sealed class ParquetInfoTests
{
    [Fact]
    public async Task WriterCountsRowGroupsAndLookupIsPathIndependent()
    {
        using var dir = new TempDirectory();
        string shards = dir.Folder("bagel_example/editing/seedxedit_multi");
        await T2IParquetSourceTests.WriteShardAsync(Path.Combine(shards, "chunk_0.parquet"), firstId: 0, rows: 5, rowGroupSize: 2);
        await T2IParquetSourceTests.WriteShardAsync(Path.Combine(shards, "chunk_1.parquet"), firstId: 5, rows: 4, rowGroupSize: 4);
        string json = Path.Combine(dir.Path, "bagel_example/editing/parquet_info/seedxedit_multi.json");

        int written = await ParquetInfo.WriteForFolderAsync(shards, json, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(2, written);
        var info = ParquetInfo.Load(json);
        Assert.Equal(new ParquetShardInfo(3, 5), info.Find(Path.Combine(shards, "chunk_0.parquet")));
        Assert.Equal(new ParquetShardInfo(1, 4), info.Find(Path.Combine(shards, "chunk_1.parquet")));
        Assert.Contains(Path.Combine(shards, "chunk_0.parquet"), File.ReadAllText(json), StringComparison.Ordinal); // reference-compatible keys

        await ParquetInfo.WriteForFolderAsync(shards, json, relativeKeys: true, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Contains("../seedxedit_multi/chunk_0.parquet", File.ReadAllText(json), StringComparison.Ordinal);
        Assert.Equal(3, ParquetInfo.Load(json).Find(Path.Combine(shards, "chunk_0.parquet"))!.NumRowGroups);
    }

    [Fact]
    public void PlaceholderKeysFromTheReferenceExampleStillResolveByFileName()
    {
        using var dir = new TempDirectory();
        string json = dir.File("info.json", """{"your_data_path/bagel_example/editing/seedxedit_multi/chunk_0.parquet": {"num_row_groups": 10, "num_rows": 100}}""");
        var info = ParquetInfo.Load(json);
        Assert.Equal(10, info.Find("/data/elsewhere/chunk_0.parquet")!.NumRowGroups);
        Assert.Null(info.Find("/data/elsewhere/chunk_9.parquet"));
    }

    [Fact]
    public void BadEntriesAndCorruptShardsNameTheFile()
    {
        using var dir = new TempDirectory();
        string json = dir.File("info.json", """{"a.parquet": {"num_rows": 3}}""");
        var entry = Assert.Throws<DataConfigException>(() => ParquetInfo.Load(json));
        Assert.Equal("a.parquet", entry.KeyPath);
        string broken = dir.File("broken.json", "{not json");
        Assert.Contains("not valid JSON", Assert.Throws<DataConfigException>(() => ParquetInfo.Load(broken)).Message, StringComparison.Ordinal);
        string corrupt = dir.File("corrupt.parquet", "PAR1 this is not parquet PAR1");
        var ex = Assert.ThrowsAny<DataConfigException>(() => ParquetInfo.FromShardsAsync([corrupt], TestContext.Current.CancellationToken).GetAwaiter().GetResult());
        Assert.Equal(corrupt, ex.FilePath);
        Assert.Contains("not a readable parquet file", ex.Message, StringComparison.Ordinal);
    }
}
