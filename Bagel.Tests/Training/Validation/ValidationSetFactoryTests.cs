using Bagel.Core.Batching;
using Bagel.Data.Config;
using Bagel.Tests.Data.Example;
using Bagel.Tests.Data.Pipeline;
using Bagel.Training.Options;
using Bagel.Training.Validation;
using TorchSharp;

namespace Bagel.Tests.Training.Validation;

/// <summary>The validation set is built from a dataset mix YAML: one group per mix group, its first batches, fixed.</summary>
public sealed class ValidationSetFactoryTests(ExampleDatasetFixture data) : IClassFixture<ExampleDatasetFixture>
{
    [Fact]
    public async Task AMixYamlGivesOneGroupPerMixGroupEachWithItsOwnSamplesOnly()
    {
        // The first group gets weight 0, which a training mix may hold; alone in its pipeline it must still give batches.
        using var pipeline = new PipelineFixture();
        string yaml = pipeline.Directory.File("validation.yaml", ReplaceFirst(await File.ReadAllTextAsync(data.Summary.MixConfigPath, TestContext.Current.CancellationToken), "weight: 1", "weight: 0"));

        using ValidationSet set = await ValidationSetFactory.CreateFromFilesAsync(ValidationTestData.Factory(pipeline, workers: 2), data.Summary.DatasetInfoPath, yaml,
            batchesPerGroup: 3, TestContext.Current.CancellationToken);

        Assert.Equal([DatasetGroupKinds.T2IPretrain, DatasetGroupKinds.UnifiedEdit, DatasetGroupKinds.VlmSft], set.Groups.Select(g => g.Name));
        Assert.All(set.Groups, g => Assert.Equal(3, g.Batches.Count));
        Assert.Equal(9, set.BatchCount);
        Assert.Empty(set.Problems());
        foreach (ValidationGroup group in set.Groups)
        {
            Assert.All(group.Batches, b => Assert.All(b.DataIndexes, i => Assert.Equal(group.Name, i.Group)));
            Assert.All(group.Batches, b => b.Validate());
        }
        Assert.All(set.Groups[0].Batches, b => Assert.NotNull(b.Vae)); // T2I: latents to denoise
        Assert.All(set.Groups[2].Batches, b => Assert.NotNull(b.TextLoss)); // VLM: answers to predict
    }

    [Fact]
    public async Task BuildingTwiceGivesTheSameBatchesWithTheSameTimesteps()
    {
        using ValidationSet first = await ValidationTestData.CreateAsync(data, batchesPerGroup: 2, workers: 2);
        using ValidationSet second = await ValidationTestData.CreateAsync(data, batchesPerGroup: 2, workers: 2);

        foreach (var (a, b) in first.Groups.SelectMany(g => g.Batches).Zip(second.Groups.SelectMany(g => g.Batches)))
        {
            Assert.Equal(a.DataIndexes, b.DataIndexes);
            using var scope = torch.NewDisposeScope();
            foreach (var ((name, x), (_, y)) in a.NamedTensors().Zip(b.NamedTensors()))
                Assert.True(x.shape.SequenceEqual(y.shape) && x.eq(y).all().item<bool>(), $"{name} differs");
        }
    }

    [Fact]
    public async Task OptionsWithoutAValidationFileGiveNoSetAndWithOneGiveItsBatchCount()
    {
        using var pipeline = new PipelineFixture();
        var options = new TrainingOptions();
        Assert.Equal("", options.ValidationConfigFile);
        Assert.Null(await ValidationSetFactory.CreateFromOptionsAsync(ValidationTestData.Factory(pipeline), data.Summary.DatasetInfoPath, options, TestContext.Current.CancellationToken));

        options.ValidationConfigFile = data.Summary.MixConfigPath;
        options.ValidationBatches = 1;
        using ValidationSet? set = await ValidationSetFactory.CreateFromOptionsAsync(ValidationTestData.Factory(pipeline), data.Summary.DatasetInfoPath, options, TestContext.Current.CancellationToken);
        Assert.NotNull(set);
        Assert.Equal([1, 1, 1], set.Groups.Select(g => g.Batches.Count));
    }

    [Fact]
    public async Task DisposingTheSetDisposesItsBatchesAndBadNamesAreRefused()
    {
        ValidationSet set = await ValidationTestData.CreateAsync(data, batchesPerGroup: 1);
        PackedBatch batch = set.Groups[0].Batches[0];
        set.Dispose();
        Assert.Throws<ObjectDisposedException>(() => batch.Validate());

        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => new ValidationSet([new("a", []), new("a", [])])).Message, StringComparison.Ordinal);
        Assert.Contains("'/'", Assert.Throws<ArgumentException>(() => new ValidationSet([new("a/b", [])])).Message, StringComparison.Ordinal);
        Assert.Equal(["The validation set has no group; give at least one dataset group with batches."], new ValidationSet([]).Problems());
        Assert.Contains("'a' has no batch", Assert.Single(new ValidationSet([new("a", [])]).Problems()), StringComparison.Ordinal);
    }

    private static string ReplaceFirst(string text, string find, string replacement)
    {
        int at = text.IndexOf(find, StringComparison.Ordinal);
        Assert.True(at >= 0, $"'{find}' not in the example mix");
        return string.Concat(text.AsSpan(0, at), replacement, text.AsSpan(at + find.Length));
    }
}
