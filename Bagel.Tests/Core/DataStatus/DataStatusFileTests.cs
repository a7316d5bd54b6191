using System.Text.Json.Nodes;
using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;

namespace Bagel.Tests.Core.DataStatus;

public sealed class DataStatusFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("bagel-data-status-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string PathOf(string name) => Path.Combine(_folder, name);

    [Fact]
    public void RoundTripKeepsEveryField()
    {
        DataStatusDocument original = DataStatusExamples.TwoRanks();
        string path = PathOf(DataStatusFile.FileName);

        DataStatusFile.Write(path, original);
        DataStatusDocument read = DataStatusFile.Read(path);

        Assert.Equal(DataStatusFile.ToJson(original), DataStatusFile.ToJson(read));
        Assert.Equal(original.Step, read.Step);
        RankDataStatus rank0 = read.Ranks[0];
        Assert.Equal(SourcePosition.T2I(1, 0, 41), rank0.Positions["t2i_pretrain"][0]);
        Assert.Equal(original.Ranks[0].PackerBuffer, rank0.PackerBuffer);
        Assert.Equal(original.Ranks[0].Prefetched, rank0.Prefetched);
        Assert.Equal(original.Ranks[0].WorkerRngStates[1][RandomPurposes.ConditionDropout], rank0.WorkerRngStates[1][RandomPurposes.ConditionDropout]);
        Assert.Equal(original.Ranks[0].TorchGlobalRngState, rank0.TorchGlobalRngState);
    }

    [Fact]
    public void RestoredRngStateContinuesTheSequenceAfterARoundTrip()
    {
        using var source = SeededRandomSource.ForPurpose(3, RandomPurposes.Timesteps);
        source.NextStandardNormal();
        var document = new DataStatusDocument
        {
            WorldSize = 1, NumWorkers = 1,
            Ranks = [new RankDataStatus { Rank = 0, RngStates = new Dictionary<string, RandomSourceState> { ["t"] = source.GetState() } }],
        };
        double expected = source.NextStandardNormal();

        DataStatusDocument read = DataStatusFile.FromJson(DataStatusFile.ToJson(document));
        using var resumed = SeededRandomSource.FromState(read.Ranks[0].RngStates["t"]);

        Assert.Equal(expected, resumed.NextStandardNormal());
    }

    [Fact]
    public void JsonUsesSnakeCaseStringEnumsAndAFormatVersion()
    {
        JsonNode json = JsonNode.Parse(DataStatusFile.ToJson(DataStatusExamples.TwoRanks()))!;
        Assert.Equal(DataStatusDocument.CurrentFormatVersion, json["format_version"]!.GetValue<int>());
        Assert.Equal("VlmJsonl", json["ranks"]![1]!["positions"]!["vlm_sft"]!["0"]!["kind"]!.GetValue<string>());
        Assert.Equal("xoshiro256**", json["ranks"]![0]!["rng_states"]![RandomPurposes.FlowNoise]!["scalar"]!["algorithm"]!.GetValue<string>());
    }

    [Fact]
    public void WriteReplacesAtomicallyAndLeavesNoTemporaryFile()
    {
        string path = PathOf(DataStatusFile.FileName);
        File.WriteAllText(path, "old content");

        DataStatusFile.Write(path, DataStatusExamples.TwoRanks());

        Assert.Equal(1500, DataStatusFile.Read(path).Step);
        Assert.Equal([DataStatusFile.FileName], Directory.GetFiles(_folder).Select(Path.GetFileName));
    }

    [Fact]
    public void FailedWriteKeepsTheOldFileAndCleansUp()
    {
        string path = PathOf(DataStatusFile.FileName);
        File.WriteAllText(path, "old content");
        DataStatusDocument invalid = DataStatusExamples.TwoRanks() with { WorldSize = 3 };

        Assert.Throws<DataStatusFormatException>(() => DataStatusFile.Write(path, invalid));

        Assert.Equal("old content", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_folder));
    }

    [Fact]
    public void UnknownFormatVersionNamesTheFileAndTheVersion()
    {
        string path = PathOf("future.json");
        string json = DataStatusFile.ToJson(DataStatusExamples.TwoRanks()).Replace("\"format_version\": 1", "\"format_version\": 7", StringComparison.Ordinal);
        File.WriteAllText(path, json);

        var ex = Assert.Throws<DataStatusFormatException>(() => DataStatusFile.Read(path));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("format version 7", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"world_size\": 1, \"num_workers\": 1, \"ranks\": []}", "no integer 'format_version'")]
    [InlineData("{\"format_version\": 1, \"world_size\": 1, \"num_workers\": 1, \"ranks\": [{\"rank\": 0}], \"extra\": 2}", "extra")]
    [InlineData("{\"format_version\": 1, \"num_workers\": 1, \"ranks\": [{\"rank\": 0}]}", "world_size")]
    [InlineData("{\"format_version\": 1, \"world_size\": 1, \"num_workers\": 1, \"ranks\": [{\"rank\": 0, \"positions\": {\"g\": {\"0\": {\"kind\": \"T2IParquet\", \"indexes\": [1, 2]}}}}]}", "T2IParquet position has 3")]
    [InlineData("{\"format_version\": 1, \"world_size\": 2, \"num_workers\": 1, \"ranks\": [{\"rank\": 0}]}", "1 rank entries for world_size 2")]
    [InlineData("{\"format_version\": 1, \"world_size\": 1, \"num_workers\": 1, \"ranks\": [{\"rank\": 0, \"positions\": {\"g\": {\"3\": {\"kind\": \"VlmJsonl\", \"indexes\": [1]}}}}]}", "worker 3")]
    [InlineData("not json", "malformed")]
    public void StrictReadRejectsBadContentNamingTheFile(string json, string expected)
    {
        var ex = Assert.Throws<DataStatusFormatException>(() => DataStatusFile.FromJson(json, "ckpt/0000100/data_status.json"));
        Assert.Contains("ckpt/0000100/data_status.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingFileIsReportedByPath()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => DataStatusFile.Read(PathOf("absent.json")));
        Assert.Contains("absent.json", ex.Message, StringComparison.Ordinal);
    }
}
