using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Tests.Data.Example;
using Bagel.Tests.Data.Pipeline;
using Bagel.Training.Validation;

namespace Bagel.Tests.Training.Validation;

/// <summary>Validation sets built through <see cref="ValidationSetFactory"/> from the example dataset's registry and mix YAML.</summary>
internal static class ValidationTestData
{
    /// <summary>Example images are at most 64 px (VAE) and 56 px (ViT), so a few samples fill a small batch.</summary>
    public static readonly PackingOptions SmallPacks = new() { ExpectedNumTokens = 160, MaxNumTokens = 260, MaxNumTokensPerSample = 260, PreferBufferBefore = 80, MaxBufferSize = 8 };

    public static DataPipelineFactory Factory(PipelineFixture pipeline, int workers = 1) =>
        new(pipeline.Tokenizer, new DataPipelineOptions { NumWorkers = workers, PrefetchFactor = 1, DataSeed = 11, Packing = SmallPacks });

    /// <summary>The example mix (t2i_pretrain, unified_edit, vlm_sft) with <paramref name="batchesPerGroup"/> batches each.</summary>
    public static async Task<ValidationSet> CreateAsync(ExampleDatasetFixture data, int batchesPerGroup = 2, int workers = 1)
    {
        using var pipeline = new PipelineFixture();
        return await ValidationSetFactory.CreateFromFilesAsync(Factory(pipeline, workers), data.Summary.DatasetInfoPath, data.Summary.MixConfigPath,
            batchesPerGroup, TestContext.Current.CancellationToken);
    }
}
