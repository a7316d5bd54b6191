using System.Globalization;
using Bagel.Core.Batching;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Training.Loop;
using Bagel.Training.Options;
using AttentionMode = Bagel.Core.Batching.AttentionMode;

namespace Bagel.Tests.Training.Options;

/// <summary>
/// The seed guide's model flags that shape the data, each from a real command line through
/// <see cref="DataWiring.ToPipelineOptions"/> into packed batches: the three conditioning dropouts (and their data
/// defaults without <c>visual_gen</c>), and the latent / ViT position grids.
/// </summary>
public sealed class SeedGuideModelOptionEffectTests
{
    private static int CausalSplits(PackedBatch batch) => batch.AttnModes.Count(m => m == AttentionMode.Causal);

    [Fact]
    public async Task TextCondDropoutProbDropsTheCaptionOfGenerationSamples()
    {
        using var fixture = new OptionEffectFixture();
        DataPipeline always = await fixture.PipelineAsync(fixture.Bind("--text_cond_dropout_prob", "1"), OptionEffectData.T2I);
        DataPipeline never = await fixture.PipelineAsync(fixture.Bind("--text_cond_dropout_prob", "0"), OptionEffectData.T2I);

        // A T2I sample is caption (causal, cfg) + noisy image: dropping the caption leaves no causal split.
        Assert.All(await OptionEffectFixture.TakeAsync(always, 3, CausalSplits), n => Assert.Equal(0, n));
        Assert.All(await OptionEffectFixture.TakeAsync(never, 3, b => (CausalSplits(b), b.Samples.Count)), n => Assert.Equal(n.Count, n.Item1));
    }

    [Fact]
    public async Task VaeCondDropoutProbDropsTheCleanConditioningImagesOfEdits()
    {
        using var fixture = new OptionEffectFixture();
        string[] others = ["--text_cond_dropout_prob", "0", "--vit_cond_dropout_prob", "0"];
        // Clean VAE images carry the timestep -inf; noisy targets (never dropped) a finite one.
        static int CleanLatentTokens(PackedBatch b) => (int)b.Vae!.PackedTimesteps.isinf().sum().item<long>();
        DataPipeline always = await fixture.PipelineAsync(fixture.Bind([.. others, "--vae_cond_dropout_prob", "1"]), OptionEffectData.Edit);
        DataPipeline never = await fixture.PipelineAsync(fixture.Bind([.. others, "--vae_cond_dropout_prob", "0"]), OptionEffectData.Edit);

        Assert.All(await OptionEffectFixture.TakeAsync(always, 3, CleanLatentTokens), n => Assert.Equal(0, n));
        Assert.All(await OptionEffectFixture.TakeAsync(never, 3, CleanLatentTokens), n => Assert.True(n > 0));
    }

    [Fact]
    public async Task VitCondDropoutProbDropsTheViTCopiesOfEditImages()
    {
        using var fixture = new OptionEffectFixture();
        string[] others = ["--text_cond_dropout_prob", "0", "--vae_cond_dropout_prob", "0"];
        DataPipeline always = await fixture.PipelineAsync(fixture.Bind([.. others, "--vit_cond_dropout_prob", "1"]), OptionEffectData.Edit);
        DataPipeline never = await fixture.PipelineAsync(fixture.Bind([.. others, "--vit_cond_dropout_prob", "0"]), OptionEffectData.Edit);

        Assert.All(await OptionEffectFixture.TakeAsync(always, 3, b => b.Vit is null), Assert.True);
        Assert.All(await OptionEffectFixture.TakeAsync(never, 3, b => b.Vit?.VitTokenSeqlens.shape[0] ?? 0), n => Assert.True(n > 0));
    }

    [Fact]
    public async Task VisualGenOffLeavesTheDataDefaultDropouts()
    {
        using var fixture = new OptionEffectFixture();
        TrainingConfiguration config = fixture.Bind("--visual_gen", "False", "--text_cond_dropout_prob", "1", "--vae_cond_dropout_prob", "1", "--vit_cond_dropout_prob", "1");
        PackingOptions packing = DataWiring.ToPipelineOptions(config).Packing;
        var defaults = new PackingOptions();
        Assert.Equal((defaults.TextCondDropoutProb, defaults.VaeCondDropoutProb, defaults.VitCondDropoutProb), (packing.TextCondDropoutProb, packing.VaeCondDropoutProb, packing.VitCondDropoutProb));

        // The caption dropout is the data default 0.1, not the flag's 1: captions are kept.
        DataPipeline pipeline = await fixture.PipelineAsync(config, OptionEffectData.T2I);
        Assert.True((await OptionEffectFixture.TakeAsync(pipeline, 3, CausalSplits)).Sum() > 0);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public async Task MaxLatentSizeIsTheRowStrideOfLatentPositionIds(int maxLatentSize)
    {
        using var fixture = new OptionEffectFixture();
        DataPipeline pipeline = await fixture.PipelineAsync(
            fixture.Bind("--max_latent_size", maxLatentSize.ToString(CultureInfo.InvariantCulture)), OptionEffectData.T2I);
        var batches = await OptionEffectFixture.TakeAsync(pipeline, 3, b => (Shapes: b.Vae!.LatentShapes.ToArray(), Ids: b.Vae.PackedLatentPositionIds.data<long>().ToArray()));

        foreach (var (shapes, ids) in batches)
        {
            long[] expected = [.. shapes.SelectMany(g => Enumerable.Range(0, g.Height).SelectMany(r => Enumerable.Range(0, g.Width).Select(c => ((long)r * maxLatentSize) + c)))];
            Assert.Equal(expected, ids);
        }
        Assert.Contains(batches, b => b.Shapes.Any(g => g.Height > 1)); // a second latent row shows the stride
    }

    [Theory]
    [InlineData(10)]
    [InlineData(70)]
    public async Task VitMaxNumPatchPerSideIsTheRowStrideOfViTPositionIds(int perSide)
    {
        using var fixture = new OptionEffectFixture();
        DataPipeline pipeline = await fixture.PipelineAsync(
            fixture.Bind("--vit_max_num_patch_per_side", perSide.ToString(CultureInfo.InvariantCulture)), OptionEffectData.Vlm);
        long[] ids = [.. (await OptionEffectFixture.TakeAsync(pipeline, 3, b => b.Vit!.PackedVitPositionIds.data<long>().ToArray())).SelectMany(i => i)];

        // The tiny VLM images are at most 56 px: at most 4 patches per side, so row = id / per_side and col = id % per_side stay below 4.
        const int maxPatches = 4;
        Assert.All(ids, id => Assert.True(id / perSide < maxPatches && id % perSide < maxPatches, $"id {id} is not row·{perSide} + col"));
        Assert.Contains(ids, id => id >= perSide); // second rows exist
    }

    [Theory]
    [InlineData("1", 8)]
    [InlineData("2", 16)]
    [InlineData("4", 32)]
    public void LatentPatchSizeIsAcceptedAndSetsThePixelsPerLatentTokenOfThePacker(string latentPatchSize, int pixels)
    {
        // It used to be refused because the data packed VAE images on a fixed 16-pixel grid.
        TrainingConfiguration config = ReferenceCommandLine.Bind(["--latent_patch_size", latentPatchSize]);
        Assert.Empty(config.Validate());
        Assert.Equal(pixels, DataWiring.ToPackingOptions(config).PixelsPerLatentToken);
        Assert.Equal(pixels, DataWiring.ToModelImageLimits(config).VaeImageDownsample);
        Assert.Contains(ReferenceCommandLine.Bind(["--latent_patch_size", "0"]).Validate(), f => f.Contains("latent_patch_size", StringComparison.Ordinal));
    }
}
