using System.Text.Json;
using Bagel.Core.Native;
using Bagel.Core.SafeTensors;
using TorchSharp;

namespace Bagel.Tests.Core.SafeTensors;

public sealed class SafeTensorsCheckpointTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public SafeTensorsCheckpointTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _folder.Dispose();

    /// <summary>Five F32 tensors of 16, 16, 16, 40 and 8 bytes.</summary>
    private static PendingTensor[] FiveTensors() =>
    [
        PendingTensor.From("a", SampleTensors.Make(SafeTensorDType.F32, 4)),
        PendingTensor.From("b", SampleTensors.Make(SafeTensorDType.F32, 2, 2)),
        PendingTensor.From("c", SampleTensors.Make(SafeTensorDType.F32, 4)),
        PendingTensor.From("d", SampleTensors.Make(SafeTensorDType.F32, 10)),
        PendingTensor.From("e", SampleTensors.Make(SafeTensorDType.I64, 1)),
    ];

    [Fact]
    public void TinyShardLimitSplitsIntoHfNamedShardsWithAnIndex()
    {
        using var scope = torch.NewDisposeScope();
        PendingTensor[] tensors = FiveTensors();
        string written = SafeTensorsCheckpoint.Write(_folder.Path, tensors, new SafeTensorsCheckpointOptions { MaxShardBytes = 32 }, cancellationToken: TestContext.Current.CancellationToken);

        // a+b = 32 | c (16; +40 would pass 32) | d (40, larger than the limit: alone) | e.
        Assert.Equal(_folder.File("model.safetensors.index.json"), written);
        Assert.Equal(
            ["model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors", "model-00003-of-00004.safetensors",
             "model-00004-of-00004.safetensors", "model.safetensors.index.json"],
            _folder.Entries());
        using (JsonDocument index = JsonDocument.Parse(File.ReadAllBytes(written)))
        {
            Assert.Equal(16 + 16 + 16 + 40 + 8, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
            JsonElement map = index.RootElement.GetProperty("weight_map");
            Assert.Equal("model-00001-of-00004.safetensors", map.GetProperty("b").GetString());
            Assert.Equal("model-00003-of-00004.safetensors", map.GetProperty("d").GetString());
        }

        using var reader = ShardedSafeTensorsReader.Open(written);
        Assert.Equal(["a", "b", "c", "d", "e"], reader.Tensors.Select(t => t.Name));
        Assert.Equal(_folder.File("model-00004-of-00004.safetensors"), reader.ShardOf("e"));
        foreach (PendingTensor tensor in tensors)
        {
            using var back = reader.ReadTensor(tensor.Entry.Name);
            Assert.True(back.Equals(tensor.Produce()));
        }
    }

    [Fact]
    public void EverythingThatFitsOneShardIsASingleFileUnlessAnIndexIsAskedFor()
    {
        using var scope = torch.NewDisposeScope();
        string single = SafeTensorsCheckpoint.Write(_folder.Path, FiveTensors(), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(_folder.File("model.safetensors"), single);
        Assert.Equal(["model.safetensors"], _folder.Entries());
        using (var source = SafeTensorsCheckpoint.Open(_folder.Path))
            Assert.IsType<SafeTensorsReader>(source);

        // Rewriting as an index replaces the single file (stale layouts are removed).
        string index = SafeTensorsCheckpoint.Write(_folder.Path, FiveTensors(), new SafeTensorsCheckpointOptions { AlwaysIndex = true }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(["model-00001-of-00001.safetensors", "model.safetensors.index.json"], _folder.Entries());
        using var sharded = SafeTensorsCheckpoint.Open(_folder.Path);
        Assert.Equal(index, sharded.Location);
        Assert.Equal(5, sharded.Tensors.Count);
    }

    [Fact]
    public void AFailureWhileWritingShardsLeavesTheFolderAsItWas()
    {
        using var scope = torch.NewDisposeScope();
        PendingTensor[] tensors = [.. FiveTensors().SkipLast(1),
            new PendingTensor(new SafeTensorsEntry("e", SafeTensorDType.I64, [1]), () => throw new IOException("shard writer failed"))];

        Assert.Throws<IOException>(() => SafeTensorsCheckpoint.Write(_folder.Path, tensors, new SafeTensorsCheckpointOptions { MaxShardBytes = 32 }, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Empty(_folder.Entries());
    }

    [Fact]
    public void MissingShardIsReportedWithTheIndexShardAndTensor()
    {
        using var scope = torch.NewDisposeScope();
        string index = SafeTensorsCheckpoint.Write(_folder.Path, FiveTensors(), new SafeTensorsCheckpointOptions { MaxShardBytes = 32 }, cancellationToken: TestContext.Current.CancellationToken);
        File.Delete(_folder.File("model-00003-of-00004.safetensors"));

        var ex = Assert.Throws<SafeTensorsFormatException>(() => ShardedSafeTensorsReader.Open(index));
        Assert.Equal(index, ex.FilePath);
        Assert.Equal("d", ex.TensorName);
        Assert.Contains(index, ex.Message, StringComparison.Ordinal);
        Assert.Contains("model-00003-of-00004.safetensors", ex.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void IndexListingATensorItsShardLacksIsReported()
    {
        using var scope = torch.NewDisposeScope();
        SafeTensorsWriter.WriteFile(_folder.File("part.safetensors"), [PendingTensor.From("w", torch.ones(2))], cancellationToken: TestContext.Current.CancellationToken);
        string index = _folder.File("model.safetensors.index.json");
        File.WriteAllText(index, """{"metadata": {"total_size": 16}, "weight_map": {"w": "part.safetensors", "ghost": "part.safetensors"}}""");

        var ex = Assert.Throws<SafeTensorsFormatException>(() => ShardedSafeTensorsReader.Open(index));
        Assert.Equal("ghost", ex.TensorName);
        Assert.Contains("'part.safetensors'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(index, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MalformedIndexIsReported()
    {
        string index = _folder.File("model.safetensors.index.json");
        File.WriteAllText(index, """{"metadata": {}, "weight_map": {"w": "../escape.safetensors"}}""");
        var ex = Assert.Throws<SafeTensorsFormatException>(() => ShardedSafeTensorsReader.Open(index));
        Assert.Equal("w", ex.TensorName);
        Assert.Equal("weight_map", ex.Field);

        File.WriteAllText(index, "{\"weight_map\": ");
        var json = Assert.Throws<SafeTensorsFormatException>(() => ShardedSafeTensorsReader.Open(index));
        Assert.Contains(index, json.Message, StringComparison.Ordinal);
    }
}
