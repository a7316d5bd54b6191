using System.Runtime.CompilerServices;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;
using Bagel.Data.Config;
using Bagel.Data.Diagnostics;
using Bagel.Data.Example;
using Bagel.Data.Images;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Samples;
using Bagel.Data.Sources;
using Bagel.Tests.Data.Example;
using Bagel.Tests.Data.Sources;

namespace Bagel.Tests.Data.Pipeline;

/// <summary>The factory builds a working pipeline from the example dataset's own registry and mix files.</summary>
public sealed class DataPipelineFactoryTests(ExampleDatasetFixture data) : IClassFixture<ExampleDatasetFixture>
{
    // Example images are at most 64 px (VAE: 4x4 latents) and 56 px (ViT: 4x4 patches), so a few samples fill a batch.
    private static readonly PackingOptions SmallPacks = new() { ExpectedNumTokens = 200, MaxNumTokens = 260, MaxNumTokensPerSample = 260, PreferBufferBefore = 100, MaxBufferSize = 8 };

    private static async Task<List<List<SampleDataIndex>>> TakeIndexesAsync(DataPipeline pipeline, int batches)
    {
        var result = new List<List<SampleDataIndex>>();
        await foreach (PackedBatch batch in pipeline.ReadAsync(null, TestContext.Current.CancellationToken))
        {
            using (batch) result.Add([.. batch.DataIndexes]);
            if (result.Count == batches) break;
        }
        return result;
    }

    [Fact]
    public async Task BuildsFromTheExampleFilesAndBatchesHoldEveryKindWithMandatoryGroupsFirst()
    {
        using var fixture = new PipelineFixture();
        var skips = new DataSkipCounters();
        var factory = new DataPipelineFactory(fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 2, PrefetchFactor = 1, Packing = SmallPacks });
        DataPipeline pipeline = await factory.CreateFromFilesAsync(data.Summary.DatasetInfoPath, data.Summary.MixConfigPath, skips, TestContext.Current.CancellationToken);

        Assert.Equal(["t2i_pretrain", "unified_edit", "vlm_sft"], pipeline.Groups.Select(g => g.Name));
        Assert.IsType<T2IParquetSource>(pipeline.Groups[0].Source);
        Assert.IsType<EditParquetSource>(pipeline.Groups[1].Source);
        Assert.IsType<VlmJsonlSource>(pipeline.Groups[2].Source);
        var o = data.Options;
        Assert.Equal([o.T2IFiles, o.EditFiles * o.EditRowsPerFile / o.EditRowsPerRowGroup, o.VlmLines], pipeline.Groups.Select(g => g.Source.UnitCount));
        Assert.Equal([true, false, true], pipeline.Groups.Select(g => g.IsMandatory));

        var batches = await TakeIndexesAsync(pipeline, 8);
        Assert.All(batches, b => Assert.Equal(["t2i_pretrain", "vlm_sft"], b.Take(2).Select(i => i.Group))); // is_mandatory: one of each first
        var groups = batches.SelectMany(b => b).Select(i => i.Group).ToHashSet();
        Assert.Equal(["t2i_pretrain", "unified_edit", "vlm_sft"], groups.Order());
        Assert.Equal([0, 1], batches.SelectMany(b => b).Select(i => i.WorkerId).Distinct().Order());
        Assert.Equal(0, skips.Total);
    }

    [Fact]
    public async Task AnImageFolderGroupAddedInCodeJoinsTheMix()
    {
        using var fixture = new PipelineFixture();
        string images = Path.Combine(data.Folder, ExampleDataLayout.VlmImagesFolder);
        string captions = fixture.Directory.File("captions.jsonl", string.Concat(Directory.GetFiles(images).Order(StringComparer.Ordinal).Take(6)
            .Select(f => $"{{\"file_name\": \"{Path.GetFileName(f)}\", \"caption\": \"picture {Path.GetFileNameWithoutExtension(f)}\"}}\n")));
        var registry = DatasetInfoRegistry.Load(data.Summary.DatasetInfoPath)
            .Add(DatasetGroupKinds.T2IImageFolder, "pictures", new DatasetInfoEntry { DataDir = images, CaptionsPath = captions });
        var loaded = DatasetMixConfig.Load(data.Summary.MixConfigPath, registry);
        var folderGroup = new DatasetGroupConfig
        {
            Name = DatasetGroupKinds.T2IImageFolder, DatasetNames = ["pictures"], NumUsedData = [1000], Weight = 3,
            ImageTransform = loaded.Groups[0].ImageTransform,
        };
        var mix = new DatasetMixConfig([.. loaded.Groups, folderGroup]);
        var skips = new DataSkipCounters();
        var factory = new DataPipelineFactory(fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 1, Packing = SmallPacks });

        DataPipeline pipeline = await factory.CreateAsync(registry, mix, skips, TestContext.Current.CancellationToken);
        var batches = await TakeIndexesAsync(pipeline, 6);

        Assert.IsType<ImageFolderSource>(pipeline.Groups[3].Source);
        Assert.Equal(["t2i_image_folder", "t2i_pretrain", "unified_edit", "vlm_sft"], batches.SelectMany(b => b).Select(i => i.Group).Distinct().Order());
        // Every listed picture without a caption line is a counted skip; pictures with one arrive.
        Assert.True(skips.Count(SkipReason.MissingCaption, DatasetGroupKinds.T2IImageFolder) > 0);
        Assert.All(batches.SelectMany(b => b).Where(i => i.Group == DatasetGroupKinds.T2IImageFolder), i => Assert.InRange(i.Position.Indexes[0], 0, ImageCount(images) - 1));
    }

    private static int ImageCount(string folder) => Directory.GetFiles(folder).Length;

    [Fact]
    public async Task AnEmptyImageFolderIsNamedWithTheAcceptedExtensions()
    {
        using var fixture = new PipelineFixture();
        string empty = fixture.Directory.Folder("no_pictures");
        File.WriteAllText(Path.Combine(empty, "notes.txt"), "not an image");
        var registry = DatasetInfoRegistry.Load(data.Summary.DatasetInfoPath)
            .Add(DatasetGroupKinds.T2IImageFolder, "pictures", new DatasetInfoEntry { DataDir = empty });
        var loaded = DatasetMixConfig.Load(data.Summary.MixConfigPath, registry);
        var folderGroup = new DatasetGroupConfig
        {
            Name = DatasetGroupKinds.T2IImageFolder, DatasetNames = ["pictures"], NumUsedData = [1000], Weight = 1,
            ImageTransform = loaded.Groups[0].ImageTransform,
        };
        var factory = new DataPipelineFactory(fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 2, Packing = SmallPacks });

        var error = await Assert.ThrowsAsync<DataConfigException>(() =>
            factory.CreateAsync(registry, new DatasetMixConfig([.. loaded.Groups, folderGroup]), new DataSkipCounters(), TestContext.Current.CancellationToken));

        Assert.Contains(Path.GetFullPath(empty), error.Message, StringComparison.Ordinal);
        Assert.Contains("no images", error.Message, StringComparison.Ordinal);
        Assert.Contains(".png", error.Message, StringComparison.Ordinal);
        Assert.Contains("pictures", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Raise num_used_data", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACustomGroupKindIsBuiltFromYamlWithItsOwnSourceAndBuilder()
    {
        using var fixture = new PipelineFixture();
        string info = fixture.Directory.File("info.yaml", $"my_pairs:\n  pairs:\n    data_dir: {fixture.Directory.Folder("pairs")}\n");
        string mixFile = fixture.Directory.File("mix.yaml",
            "my_pairs:\n  dataset_names: [pairs]\n  num_used_data: [5]\n  weight: 1\n  image_transform_args: {image_stride: 16, max_image_size: 64, min_image_size: 32}\n");
        var counting = new CountingBuilder();
        var factory = new DataPipelineFactory(fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 1, Packing = SmallPacks })
            .RegisterGroupKind(new DataGroupKind("my_pairs",
                (context, _) => ValueTask.FromResult<RawSampleSource>(new InMemoryPairsSource(context.Config.Name, (int)context.Config.NumUsedData[0])),
                context => counting.Wrap(context.CreateStandardBuilder())));
        Assert.Equal(["my_pairs"], factory.CustomGroupKinds);
        Assert.Throws<ArgumentException>(() => factory.RegisterGroupKind(new DataGroupKind("vlm_sft", (_, _) => throw new InvalidOperationException())));

        DataPipeline pipeline = await factory.CreateFromFilesAsync(info, mixFile, cancellationToken: TestContext.Current.CancellationToken);
        var batches = await TakeIndexesAsync(pipeline, 2);

        Assert.All(batches.SelectMany(b => b), i => Assert.Equal("my_pairs", i.Group));
        Assert.True(counting.Calls >= batches.Sum(b => b.Count));
    }

    [Fact]
    public async Task ImageSizesAboveTheModelsGridsAndTooFewUnitsFailAtCreation()
    {
        using var fixture = new PipelineFixture();
        var tiny = new DataPipelineFactory(fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 1, Packing = SmallPacks with { MaxLatentSize = 2 } });
        var sizes = await Assert.ThrowsAsync<DataConfigAggregateException>(() => tiny.CreateFromFilesAsync(data.Summary.DatasetInfoPath, data.Summary.MixConfigPath,
            cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains(sizes.Errors, e => e.KeyPath == "t2i_pretrain.image_transform_args.max_image_size" && e.Message.Contains("max_latent_size is 2", StringComparison.Ordinal));

        // The example's editing dataset has 2 row groups: 3 workers cannot each get one.
        var wide = new DataPipelineFactory(fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 3, Packing = SmallPacks });
        var units = await Assert.ThrowsAsync<DataConfigException>(() => wide.CreateFromFilesAsync(data.Summary.DatasetInfoPath, data.Summary.MixConfigPath,
            cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal("unified_edit.num_used_data", units.KeyPath);
        Assert.Contains("gives 2 unit(s)", units.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EditParquetInfoIsMergedPerDatasetSoAPlaceholderKeyCannotMatchAnotherDatasetsShard()
    {
        using var fixture = new PipelineFixture();
        string a = fixture.Directory.Folder("a"), b = fixture.Directory.Folder("b");
        await EditParquetSourceTests.WriteAsync(Path.Combine(a, "chunk_0.parquet"), 0, 4, 2);    // 2 row groups
        await EditParquetSourceTests.WriteAsync(Path.Combine(b, "chunk_0.parquet"), 10, 6, 2);   // 3 row groups, no parquet_info
        // The reference's example keys start with a placeholder; ours still resolve them by file name, within dataset a only.
        string infoA = fixture.Directory.File("a_info.json", "{\"your_data_path/chunk_0.parquet\": {\"num_row_groups\": 2, \"num_rows\": 4}}");
        var registry = new DatasetInfoRegistry()
            .Add(DatasetGroupKinds.UnifiedEdit, "a", new DatasetInfoEntry { DataDir = a, ParquetInfoPath = infoA })
            .Add(DatasetGroupKinds.UnifiedEdit, "b", new DatasetInfoEntry { DataDir = b });
        var mix = new DatasetMixConfig([new DatasetGroupConfig
        {
            Name = DatasetGroupKinds.UnifiedEdit, DatasetNames = ["a", "b"], NumUsedData = [1, 1], Weight = 1,
            ImageTransform = PipelineFixture.Vae, VitImageTransform = PipelineFixture.Vit,
        }]);
        var factory = new DataPipelineFactory(fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 1, Packing = SmallPacks });

        DataPipeline pipeline = await factory.CreateAsync(registry, mix, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(5, pipeline.Groups.Single().Source.UnitCount);
    }

    [Fact]
    public async Task ShuffleLinesPicksTheVlmLinesFromShuffleSeedNotFromDataSeed()
    {
        using var fixture = new PipelineFixture();
        var registry = DatasetInfoRegistry.Load(data.Summary.DatasetInfoPath);
        var vlm = DatasetMixConfig.Load(data.Summary.MixConfigPath, registry).Groups.Single(g => g.Name == DatasetGroupKinds.VlmSft);
        async Task<long[]> LinesAsync(DatasetGroupConfig group, long dataSeed)
        {
            var factory = new DataPipelineFactory(fixture.Tokenizer, new DataPipelineOptions { NumWorkers = 1, DataSeed = dataSeed, Packing = SmallPacks });
            DataPipeline pipeline = await factory.CreateAsync(registry, new DatasetMixConfig([group]), cancellationToken: TestContext.Current.CancellationToken);
            var source = pipeline.Groups.Single().Source;
            var raws = await SourceTestHelpers.TakeAsync(source.ReadAsync(WorkerSlice.Single, SourceTestHelpers.Seeded(1), null, new DataSkipCounters(),
                TestContext.Current.CancellationToken), source.UnitCount);
            return [.. raws.Select(r => ((VlmPayload)r.Payload).LineNumber).Order()];
        }
        var five = vlm with { NumUsedData = [5] };

        long[] firstFive = [1, 2, 3, 4, 5];

        long[] picked = await LinesAsync(five, dataSeed: 1);
        long[] otherDataSeed = await LinesAsync(five, dataSeed: 2);
        long[] otherShuffleSeed = await LinesAsync(five with { ShuffleSeed = 5 }, dataSeed: 1);
        long[] unshuffled = await LinesAsync(five with { ShuffleLines = false }, dataSeed: 1);

        Assert.Equal(5, picked.Length);
        Assert.NotEqual(firstFive, picked);          // shuffled before truncation
        Assert.Equal(picked, otherDataSeed);         // data_seed does not change the pick
        Assert.NotEqual(picked, otherShuffleSeed);
        Assert.Equal(firstFive, unshuffled);
    }

    /// <summary>A custom source: generated pictures and captions, one unit per pair.</summary>
    private sealed class InMemoryPairsSource(string group, int count) : RawSampleSource(group, null)
    {
        public override SourcePositionKind PositionKind => SourcePositionKind.ImageFolder;

        public override int UnitCount => count;

        protected override object ShardUnits(WorkerSlice slice, Func<int, int> randomBelow) =>
            UnitSharding.Slice([.. Enumerable.Range(0, count)], Comparer<int>.Default, randomBelow, slice, Group);

        protected override async IAsyncEnumerable<RawSample> ReadPassAsync(object units, WorkerSlice slice, IReadOnlyList<long>? resumeAfter, DataSkipCounters skips,
            [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            var ids = (IReadOnlyList<int>)units;
            for (int index = resumeAfter is null ? 0 : (int)resumeAfter[0] + 1; index < ids.Count; index++)
            {
                await Task.Yield();
                yield return new RawSample(new SampleDataIndex(Group, slice.Worker, new SourcePosition(SourcePositionKind.ImageFolder, [index])), $"pair {ids[index]}",
                    new T2IPayload(PipelineFixture.Png(48, 32, ids[index]), $"{{\"c\": \"pair {ids[index]}\"}}"));
            }
        }
    }
}
