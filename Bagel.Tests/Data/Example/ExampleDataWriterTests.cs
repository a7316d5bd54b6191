using System.Text.Json;
using System.Text.Json.Nodes;
using Bagel.Data.Config;
using Bagel.Data.Diagnostics;
using Bagel.Data.Example;
using Bagel.Data.Images;
using Bagel.Data.Sources;
using static Bagel.Tests.Data.Sources.SourceTestHelpers;

namespace Bagel.Tests.Data.Example;

/// <summary>The default example dataset reads back through the registry, the mix config and every source.</summary>
public sealed class ExampleDataWriterTests(ExampleDatasetFixture data) : IClassFixture<ExampleDatasetFixture>
{
    private static readonly ImageDecoder Decoder = new();

    [Fact]
    public void RegistryAndMixLoadWithTheWrittenCounts()
    {
        var registry = DatasetInfoRegistry.Load(data.Summary.DatasetInfoPath);
        var mix = DatasetMixConfig.Load(data.Summary.MixConfigPath, registry);

        Assert.Equal(Path.Combine(data.Folder, "t2i"), registry.Get("t2i_pretrain", "t2i").DataDir);
        Assert.Equal(Path.Combine(data.Folder, "editing", "parquet_info", "seedxedit_multi.json"), registry.Get("unified_edit", "seedxedit_multi").ParquetInfoPath);
        Assert.Equal(Path.Combine(data.Folder, "vlm", "llava_ov_si.jsonl"), registry.Get("vlm_sft", "llava_ov").JsonlPath);
        Assert.Equal(["t2i_pretrain", "unified_edit", "vlm_sft"], mix.Groups.Select(g => g.Name));
        Assert.Equal([data.Options.T2IFiles, data.Options.EditFiles, data.Options.VlmLines], mix.Groups.Select(g => g.NumUsedData.Single()));
        Assert.Equal([true, false, true], mix.Groups.Select(g => g.IsMandatory));
        Assert.All(mix.Groups, g => Assert.Equal(1.0, g.Weight));
        var t2i = mix.Groups[0].ImageTransform;
        Assert.Equal((16, 64, 32), (t2i.ImageStride, t2i.MaxImageSize, t2i.MinImageSize));
        Assert.Equal(14, mix.Groups[1].VitImageTransform!.ImageStride);
        Assert.Equal(56, mix.Groups[2].ImageTransform.MaxImageSize);
        // Tiny sizes fit a tiny model: 64 px / 16 = 4 latent tokens per side, 56 px / 14 = 4 patches.
        mix.ValidateAgainst(new ModelImageLimits(MaxLatentSize: 4, VitMaxNumPatchPerSide: 4));
    }

    [Fact]
    public async Task EveryT2IRowHasAPictureThatMatchesItsCaptions()
    {
        var o = data.Options;
        var source = new T2IParquetSource("t2i_pretrain", [Path.Combine(data.Folder, ExampleDataLayout.T2IFolder)], [o.T2IFiles]);
        var samples = await ReadOnePassAsync(source, o.T2IFiles * o.T2IRowsPerFile);

        foreach (var sample in samples)
        {
            var payload = (T2IPayload)sample.Payload;
            var captions = Assert.IsType<JsonObject>(JsonNode.Parse(payload.Captions!));
            Assert.Equal(["short", "long"], captions.Select(p => p.Key));
            string shortCaption = captions["short"]!.GetValue<string>();
            var image = Decoder.Decode(payload.Image!, sample.Origin);
            Assert.InRange(image.Width, o.MinImageSide, o.MaxImageSide);
            Assert.InRange(image.Height, o.MinImageSide, o.MaxImageSide);
            // The picture shows what the caption says: the corner is the background colour (exact: PNG, no noise).
            string background = shortCaption.Split(" on a ")[1].Replace(" background", "", StringComparison.Ordinal);
            var expected = ExampleScene.Colors.Single(c => c.Name == background);
            Assert.Equal((expected.R, expected.G, expected.B), image.GetPixel(0, 0));
            Assert.Contains(shortCaption.Split(' ')[1], ExampleScene.Colors.Select(c => c.Name));
        }
    }

    [Fact]
    public async Task EveryEditRowIsAChainWithOneInstructionListPerStep()
    {
        var o = data.Options;
        var entry = DatasetInfoRegistry.Load(data.Summary.DatasetInfoPath).Get("unified_edit", "seedxedit_multi");
        var source = await EditParquetSource.CreateAsync("unified_edit", [entry.DataDir], [o.EditFiles], ParquetInfo.Load(entry.ParquetInfoPath!),
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(o.EditFiles * (o.EditRowsPerFile / o.EditRowsPerRowGroup), source.UnitCount);
        var samples = await ReadOnePassAsync(source, o.EditFiles * o.EditRowsPerFile);

        Assert.Equal(data.Summary.EditImages, samples.Sum(s => ((EditPayload)s.Payload).Images.Count));
        foreach (var sample in samples)
        {
            var payload = (EditPayload)sample.Payload;
            Assert.InRange(payload.Images.Count, 2, o.EditMaxChainLength);
            Assert.Equal(payload.Images.Count - 1, payload.Instructions.Count);
            foreach (var step in payload.Instructions)
            {
                var wordings = Assert.IsType<List<string?>>(step);
                Assert.InRange(wordings.Count, 1, 2);
                Assert.All(wordings, w => Assert.False(string.IsNullOrWhiteSpace(w)));
            }
            var images = payload.Images.Select(bytes => Decoder.Decode(bytes!, sample.Origin)).ToList();
            Assert.All(images, i => Assert.Equal((images[0].Width, images[0].Height), (i.Width, i.Height)));
            Assert.InRange(images[0].Width, o.MinImageSide, o.MaxImageSide);
            // Every edit changes the picture.
            for (int i = 1; i < images.Count; i++) Assert.NotEqual(images[i - 1].Pixels, images[i].Pixels);
        }
    }

    [Fact]
    public async Task EveryVlmLineIsAConversationAboutAnExistingPicture()
    {
        var o = data.Options;
        var entry = DatasetInfoRegistry.Load(data.Summary.DatasetInfoPath).Get("vlm_sft", "llava_ov");
        var source = new VlmJsonlSource("vlm_sft", [entry.JsonlPath!], [entry.DataDir], [o.VlmLines]);
        var samples = await ReadOnePassAsync(source, o.VlmLines);

        foreach (var sample in samples)
        {
            var payload = (VlmPayload)sample.Payload;
            using var line = JsonDocument.Parse(payload.Line);
            string imagePath = Path.Combine(payload.ImageDirectory, line.RootElement.GetProperty("image").GetString()!);
            var image = Decoder.DecodeFile(imagePath);
            Assert.InRange(image.Width, o.MinImageSide, o.MaxImageSide);
            var turns = line.RootElement.GetProperty("conversations").EnumerateArray().ToList();
            Assert.True(turns.Count is 2 or 4, $"{sample.Origin} has {turns.Count} turns");
            for (int t = 0; t < turns.Count; t++)
                Assert.Equal(t % 2 == 0 ? "human" : "gpt", turns[t].GetProperty("from").GetString());
            Assert.StartsWith("<image>\n", turns[0].GetProperty("value").GetString(), StringComparison.Ordinal);
            Assert.All(turns.Skip(1), t => Assert.DoesNotContain("<image>", t.GetProperty("value").GetString(), StringComparison.Ordinal));
        }
        Assert.Equal(o.VlmLines, Directory.GetFiles(entry.DataDir, "*.jpg").Length);
    }

    [Fact]
    public async Task ParquetInfoRowGroupCountsMatchTheShardsUnderRelativeKeys()
    {
        var o = data.Options;
        string infoPath = Path.Combine(data.Folder, ExampleDataLayout.EditParquetInfo);
        var shards = Directory.GetFiles(Path.Combine(data.Folder, ExampleDataLayout.EditFolder), "*.parquet");
        Assert.Equal(o.EditFiles, shards.Length);
        var info = ParquetInfo.Load(infoPath);
        Assert.Equal(o.EditFiles, info.Count);
        foreach (string shard in shards)
        {
            var footer = await ParquetInfo.ReadFooterAsync(shard, TestContext.Current.CancellationToken);
            Assert.Equal(footer, info.Find(shard));
            Assert.Equal(new ParquetShardInfo(o.EditRowsPerFile / o.EditRowsPerRowGroup, o.EditRowsPerFile), footer);
        }
        foreach (string shard in Directory.GetFiles(Path.Combine(data.Folder, ExampleDataLayout.T2IFolder), "*.parquet"))
        {
            var footer = await ParquetInfo.ReadFooterAsync(shard, TestContext.Current.CancellationToken);
            Assert.Equal(new ParquetShardInfo((o.T2IRowsPerFile + o.T2IRowsPerRowGroup - 1) / o.T2IRowsPerRowGroup, o.T2IRowsPerFile), footer);
        }
        // The keys are relative to the JSON's folder, so the dataset folder can be moved or copied.
        var keys = JsonNode.Parse(File.ReadAllText(infoPath))!.AsObject().Select(p => p.Key);
        Assert.Equal(Enumerable.Range(0, o.EditFiles).Select(k => Path.Combine("..", "seedxedit_multi", $"chunk_{k}.parquet")), keys);
    }

    [Fact]
    public async Task ColumnTypesAreTheReferenceArrowTypes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using (var t2i = await Parquet.ParquetReader.CreateAsync(Path.Combine(data.Folder, "t2i", "chunk_0.parquet"), cancellationToken: ct))
        {
            var fields = t2i.Schema.Fields.Cast<Parquet.Schema.DataField>().ToList();
            Assert.Equal(["image", "captions"], fields.Select(f => f.Name));
            Assert.Equal(["binary", "string"], fields.Select(ArrowType));
        }
        await using var edit = await Parquet.ParquetReader.CreateAsync(Path.Combine(data.Folder, ExampleDataLayout.EditFolder, "chunk_0.parquet"), cancellationToken: ct);
        var images = Assert.IsType<Parquet.Schema.ListField>(edit.Schema.Fields[0]);
        var instructions = Assert.IsType<Parquet.Schema.ListField>(edit.Schema.Fields[1]);
        Assert.Equal(("image_list", "instruction_list"), (images.Name, instructions.Name));
        Assert.Equal("binary", ArrowType(Assert.IsType<Parquet.Schema.DataField>(images.Item)));
        var inner = Assert.IsType<Parquet.Schema.ListField>(instructions.Item);
        Assert.Equal("string", ArrowType(Assert.IsType<Parquet.Schema.DataField>(inner.Item)));
    }

    // Parquet.Net reports byte arrays and UTF-8 strings as ReadOnlyMemory of byte / char when reading a schema.
    private static string ArrowType(Parquet.Schema.DataField field) => field.ClrType switch
    {
        var t when t == typeof(byte[]) || t == typeof(ReadOnlyMemory<byte>) => "binary",
        var t when t == typeof(string) || t == typeof(ReadOnlyMemory<char>) => "string",
        var t => t.Name,
    };

    private static async Task<List<RawSample>> ReadOnePassAsync(RawSampleSource source, int expected)
    {
        var samples = await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(1), null, new DataSkipCounters(), TestContext.Current.CancellationToken), expected);
        Assert.Equal(expected, samples.Count);
        // A pass holds each row once.
        Assert.Equal(expected, samples.Select(s => s.Index.Position.ToString()).Distinct().Count());
        return samples;
    }
}
