using Bagel.Data.Config;
using Bagel.Data.Pipeline;
using Bagel.Tests.Data.Example;
using Bagel.Tests.Data.Pipeline;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Options;

/// <summary>
/// <c>max_latent_size</c>, <c>latent_patch_size</c> and <c>vit_max_num_patch_per_side</c> as limits: the pipeline of the
/// example dataset is built from a reference command line with <see cref="DataWiring.ToPipelineOptions"/> and
/// <see cref="DataWiring.ToModelImageLimits"/>, and a flag too small for the mix's image sizes (or a VAE stride the
/// latent patch does not give) fails at creation naming the YAML key.
/// </summary>
public sealed class SeedGuideImageLimitOptionTests(ExampleDatasetFixture data) : IClassFixture<ExampleDatasetFixture>
{
    // The example's images are at most 64 px (VAE) and 56 px (ViT); its editing set has 2 row groups, so 1 worker.
    private static readonly string[] SmallRun = ["--num_workers", "1", "--expected_num_tokens", "200", "--max_num_tokens", "260", "--max_num_tokens_per_sample", "260"];

    private async Task<DataPipeline> CreateAsync(params string[] args)
    {
        using var tokenizer = new PipelineFixture();
        TrainingConfiguration config = ReferenceCommandLine.Bind([.. SmallRun, .. args]);
        var factory = new DataPipelineFactory(tokenizer.Tokenizer, DataWiring.ToPipelineOptions(config), modelLimits: DataWiring.ToModelImageLimits(config));
        return await factory.CreateFromFilesAsync(data.Summary.DatasetInfoPath, data.Summary.MixConfigPath, cancellationToken: TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task MaxLatentSizeAndVitMaxNumPatchPerSideAtTheirDefaultsAcceptTheExampleMix() =>
        Assert.Equal(3, (await CreateAsync()).Groups.Count);

    [Fact]
    public async Task MaxLatentSizeBelowTheMixsLargestVaeImageFailsAtCreation()
    {
        var error = await Assert.ThrowsAsync<DataConfigAggregateException>(() => CreateAsync("--max_latent_size", "2"));
        Assert.Contains(error.Errors, e => e.KeyPath == "t2i_pretrain.image_transform_args.max_image_size" && e.Message.Contains("max_latent_size is 2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WithInterpolatePosImagesBeyondMaxLatentSizeAreAcceptedAndPackedOntoTheGrid()
    {
        // 64 px VAE images are 4x4 tokens; max_latent_size 2 refuses them unless the ids are interpolated onto 2x2.
        DataPipeline pipeline = await CreateAsync("--max_latent_size", "2", "--interpolate_pos", "True");
        await foreach (var batch in pipeline.ReadAsync(cancellationToken: TestContext.Current.CancellationToken))
        {
            using (batch)
            {
                if (batch.Vae is not { } vae) continue;
                Assert.Contains(vae.LatentShapes, g => g.Height > 2 || g.Width > 2);
                Assert.All(vae.PackedLatentPositionIds.data<long>().ToArray(), id => Assert.InRange(id, 0, 3));
            }
            break;
        }
    }

    [Fact]
    public async Task LatentPatchSizeSetsTheVaeStrideTheMixMustUse()
    {
        // latent_patch_size 1 gives vae_image_downsample 1·8 = 8; the example's VAE streams use stride 16.
        var error = await Assert.ThrowsAsync<DataConfigAggregateException>(() => CreateAsync("--latent_patch_size", "1"));
        Assert.Contains(error.Errors, e => e.KeyPath == "t2i_pretrain.image_transform_args.image_stride" && e.Message.Contains("needs stride 8", StringComparison.Ordinal));
        Assert.DoesNotContain(error.Errors, e => e.KeyPath.StartsWith("vlm_sft", StringComparison.Ordinal)); // the ViT stream is not a VAE stream
    }

    [Fact]
    public async Task VitMaxNumPatchPerSideBelowTheMixsLargestViTImageFailsAtCreation()
    {
        var error = await Assert.ThrowsAsync<DataConfigAggregateException>(() => CreateAsync("--vit_max_num_patch_per_side", "2"));
        Assert.Contains(error.Errors, e => e.KeyPath.StartsWith("vlm_sft.image_transform_args", StringComparison.Ordinal) && e.Message.Contains("vit_max_num_patch_per_side", StringComparison.Ordinal));
    }

    [Fact]
    public async Task NumWorkersNeedsAUnitPerWorkerInEveryGroup()
    {
        // The example's editing set has 2 row groups (units): 3 workers cannot each get one.
        var error = await Assert.ThrowsAsync<DataConfigException>(() => CreateAsync("--num_workers", "3"));
        Assert.Equal("unified_edit.num_used_data", error.KeyPath);
        Assert.Contains("3 worker(s)", error.Message, StringComparison.Ordinal);
    }
}
