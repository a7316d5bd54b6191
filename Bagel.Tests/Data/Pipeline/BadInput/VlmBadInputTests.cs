using Bagel.Core.Batching;
using Bagel.Data.Config;
using Bagel.Data.Diagnostics;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Sources;
using static Bagel.Tests.Data.Pipeline.BadInput.BadInputHarness;

namespace Bagel.Tests.Data.Pipeline.BadInput;

/// <summary>
/// Issue 4 point 7 for VLM conversations and whole sources: each bad line is one counted skip whose warning names
/// the JSONL file and line, the lines around it still become samples, and a source with nothing valid is an error.
/// </summary>
public sealed class VlmBadInputTests : IDisposable
{
    private const string Vlm = "vlm_sft";
    private readonly PipelineFixture _fixture = new();
    private readonly CapturingLogger _log = new();

    public void Dispose() => _fixture.Dispose();

    private static string Line(int id, string image, string question) =>
        $"{{\"id\": {id}, \"image\": {image}, \"conversations\": [{{\"from\": \"human\", \"value\": \"{question}\"}}, {{\"from\": \"gpt\", \"value\": \"Answer {id}.\"}}]}}";

    private static string GoodLine(int id) => Line(id, $"\"{id}.png\"", $"<image>\\nWhat is in picture {id}?");

    public static TheoryData<string, SkipReason> BadLines => new()
    {
        { "malformed", SkipReason.MalformedJsonLine },
        { "not an object", SkipReason.MalformedJsonLine },
        { "too many tags", SkipReason.ImageTagMismatch },
        { "too few tags", SkipReason.ImageTagMismatch },
        { "missing image", SkipReason.MissingImage },
        { "corrupt_png_garbage_after_signature.png", SkipReason.CorruptImage },
        { "corrupt_jpeg_truncated_first16384bytes_480x360.jpg", SkipReason.TruncatedImage },
        { "corrupt_jpeg_truncated_progressive_100x100.jpg", SkipReason.TruncatedImage },
        { "corrupt_png_truncated_idat_640x480.png", SkipReason.TruncatedImage },
    };

    [Theory]
    [NeedsSharedData("images")]
    [MemberData(nameof(BadLines))]
    public async Task ABadLineIsOneCountedSkipNamingItsLineAndTheLinesAroundItArrive(string kind, SkipReason reason)
    {
        string bad = kind switch
        {
            "malformed" => "{\"id\": 1, \"image\": \"1.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>",
            "not an object" => "[\"1.png\", \"<image>\"]",
            "too many tags" => Line(1, "\"1.png\"", "<image> left <image> right"),
            "too few tags" => Line(1, "[\"1.png\", \"0.png\"]", "<image>\\nCompare the two pictures."),
            "missing image" => Line(1, "\"no_such_picture.png\"", "<image>\\nWhat is this?"),
            _ => GoodLine(1), // the line is fine; its image file is replaced below
        };
        var (jsonl, images) = _fixture.WriteVlm(3, i => i == 1 ? bad : GoodLine(i));
        if (kind.StartsWith("corrupt_", StringComparison.Ordinal))
            File.Copy(SharedData.Require("images/" + kind), Path.Combine(images, "1.png"), overwrite: true);
        var skips = new DataSkipCounters(_log);

        var built = await BuiltOriginsAsync(new VlmJsonlSource(Vlm, [jsonl], [images], [3]), _fixture.Builder(skips, PipelineFixture.Vit), 3, skips);

        Assert.Equal([$"{jsonl} line 1", $"{jsonl} line 3"], built);
        Assert.Equal(1, skips.Count(reason, Vlm));
        Assert.Equal(1, skips.Total);
        Assert.Contains(_log.Messages, m => m.StartsWith("Warning", StringComparison.Ordinal) && m.Contains($"{jsonl} line 2", StringComparison.Ordinal)
                                            && m.Contains(reason.ToString(), StringComparison.Ordinal));
    }

    private static readonly PackingOptions SmallPacks = new() { ExpectedNumTokens = 150, MaxNumTokens = 200, MaxNumTokensPerSample = 200, PreferBufferBefore = 80, MaxBufferSize = 4 };

    [Fact]
    public async Task ThroughThePipelineOnlyTheValidLinesArriveInBatches()
    {
        string[] bad =
        [
            "{\"id\": 1, ",
            Line(3, "\"3.png\"", "<image><image> twice"),
            Line(5, "\"missing.png\"", "<image>\\nWhat?"),
        ];
        var (jsonl, images) = _fixture.WriteVlm(8, i => i switch { 1 => bad[0], 3 => bad[1], 5 => bad[2], _ => GoodLine(i) });
        var registry = new DatasetInfoRegistry().Add(Vlm, "conv", new DatasetInfoEntry { DataDir = images, JsonlPath = jsonl });
        var mix = new DatasetMixConfig([new DatasetGroupConfig
        {
            Name = Vlm, DatasetNames = ["conv"], NumUsedData = [8], Weight = 1, ImageTransform = PipelineFixture.Vit,
            FrameSampler = new FrameSamplerArgs(),
        }]);
        var skips = new DataSkipCounters();
        var factory = new DataPipelineFactory(_fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 2, PrefetchFactor = 1, Packing = SmallPacks });
        DataPipeline pipeline = await factory.CreateAsync(registry, mix, skips, TestContext.Current.CancellationToken);

        var seen = new HashSet<(int Worker, long Position)>();
        int batches = 0;
        await foreach (PackedBatch batch in pipeline.ReadAsync(null, TestContext.Current.CancellationToken))
        {
            using (batch) foreach (var index in batch.DataIndexes) seen.Add((index.WorkerId, index.Position.Indexes[0]));
            if (++batches == 6) break;
        }

        // Each worker reads 4 lines; the 5 valid lines all arrive, the 3 bad ones never do, each counted at least once.
        Assert.Equal(5, seen.Count);
        Assert.True(skips.Count(SkipReason.MalformedJsonLine, Vlm) >= 1);
        Assert.True(skips.Count(SkipReason.ImageTagMismatch, Vlm) >= 1);
        Assert.True(skips.Count(SkipReason.MissingImage, Vlm) >= 1);
        Assert.Equal(skips.Total, skips.Count(SkipReason.MalformedJsonLine) + skips.Count(SkipReason.ImageTagMismatch) + skips.Count(SkipReason.MissingImage));
    }

    [Fact]
    public async Task ASourceThatYieldsNothingIsAnErrorThePipelineSurfaces()
    {
        string dir = _fixture.Directory.Folder("t2i");
        await File.WriteAllBytesAsync(Path.Combine(dir, "chunk_0.parquet"), "PAR1 not really parquet PAR1"u8.ToArray(), TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(Path.Combine(dir, "chunk_1.parquet"), [], TestContext.Current.CancellationToken);
        var registry = new DatasetInfoRegistry().Add(DatasetGroupKinds.T2IPretrain, "broken", new DatasetInfoEntry { DataDir = dir });
        var mix = new DatasetMixConfig([new DatasetGroupConfig
        {
            Name = DatasetGroupKinds.T2IPretrain, DatasetNames = ["broken"], NumUsedData = [2], Weight = 1, ImageTransform = PipelineFixture.Vae,
        }]);
        var skips = new DataSkipCounters();
        var factory = new DataPipelineFactory(_fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 1, Packing = SmallPacks });
        DataPipeline pipeline = await factory.CreateAsync(registry, mix, skips, TestContext.Current.CancellationToken);

        var error = await Assert.ThrowsAsync<DataPipelineException>(async () =>
        {
            await foreach (PackedBatch batch in pipeline.ReadAsync(null, TestContext.Current.CancellationToken)) batch.Dispose();
        });

        Assert.IsType<InvalidOperationException>(error.InnerException);
        Assert.Contains("'t2i_pretrain'", error.InnerException!.Message, StringComparison.Ordinal);
        Assert.Contains("yielded no valid record", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, skips.Count(SkipReason.CorruptParquet, DatasetGroupKinds.T2IPretrain)); // one pass, both files, then the error
    }

    [Fact]
    public async Task AnEditGroupWhoseShardsAreAllUnreadableFailsAtCreation()
    {
        string dir = _fixture.Directory.Folder("edit");
        await File.WriteAllBytesAsync(Path.Combine(dir, "chunk_0.parquet"), [1, 2, 3], TestContext.Current.CancellationToken);
        var registry = new DatasetInfoRegistry().Add(DatasetGroupKinds.UnifiedEdit, "broken", new DatasetInfoEntry { DataDir = dir });
        var mix = new DatasetMixConfig([new DatasetGroupConfig
        {
            Name = DatasetGroupKinds.UnifiedEdit, DatasetNames = ["broken"], NumUsedData = [1], Weight = 1,
            ImageTransform = PipelineFixture.Vae, VitImageTransform = PipelineFixture.Vit,
        }]);
        var skips = new DataSkipCounters();
        var factory = new DataPipelineFactory(_fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 1, Packing = SmallPacks });

        var error = await Assert.ThrowsAsync<DataConfigException>(() => factory.CreateAsync(registry, mix, skips, TestContext.Current.CancellationToken));

        Assert.Equal("unified_edit.num_used_data", error.KeyPath);
        Assert.Contains("gives 0 unit(s)", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, skips.Count(SkipReason.CorruptParquet, DatasetGroupKinds.UnifiedEdit));
    }
}
