using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Data.Diagnostics;
using Bagel.Data.Images;
using Bagel.Data.Packing;
using Bagel.Models.Bagel;
using Bagel.Tests.Models.Bagel;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Data.Packing;

/// <summary>
/// <c>interpolate_pos = true</c> end to end: the packing loop yields batches whose latent position ids are the
/// reference's interpolated ones (the validator used to demand <c>row·G + col</c> and threw), and the model trains a
/// step on them. Also the VAE's pixels per latent token travelling with the batch instead of a fixed 16.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class InterpolatedPositionPackingTests
{
    private static Tensor Image(int height, int width) => torch.rand(3, height, width).mul(2).sub(1);

    // T2I samples of 32x32 (2x2 tokens, below G = 4) and 80x96 (5x6 tokens, beyond G: only interpolation allows it).
    private static PackableSample T2I(long row) => new(SequencePackerTests.Index("t2i", row), $"row {row}",
        [PlanItem.Text(true, false), PlanItem.NoisyVaeImage()], [[5, 6, 7]], [row % 2 == 0 ? Image(32, 32) : Image(80, 96)]);

    private static PackingLoop Loop(bool interpolate, IRandomSource uniform, IRandomSource timesteps)
    {
        var options = new PackingOptions
        {
            MaxLatentSize = BagelTestModels.MaxLatentSize, InterpolatePos = interpolate,
            ExpectedNumTokens = 60, MaxNumTokens = 120, MaxNumTokensPerSample = 120, PreferBufferBefore = 60,
            TextCondDropoutProb = 0, VitCondDropoutProb = 0, VaeCondDropoutProb = 0,
        };
        long row = 0;
        PackingGroup group = new("t2i", 1.0, false, _ => ValueTask.FromResult(T2I(row++)));
        return new PackingLoop([group], options, new SequencePacker(options, BagelTestModels.Tokens), uniform, uniform, timesteps, new DataSkipCounters());
    }

    [Fact]
    public async Task PackingLoopWithInterpolatePosYieldsTheInterpolatedIdsAndTheModelTrainsAStepOnThem()
    {
        torch.manual_seed(3);
        using PackingLoop loop = Loop(interpolate: true, new SeededRandomSource(1), new SeededRandomSource(2));
        using PackedBatch batch = await loop.NextBatchAsync(TestContext.Current.CancellationToken);

        VaeImageFields vae = batch.Vae!;
        Assert.Contains(vae.LatentShapes, g => g.Height > BagelTestModels.MaxLatentSize); // a grid beyond G×G, as interpolation allows
        long[] expected = [.. vae.LatentShapes.SelectMany(g => FlattenedPositionIds.Interpolate(g.Height * 16, g.Width * 16, 16, BagelTestModels.MaxLatentSize))];
        Assert.Equal(expected, vae.PackedLatentPositionIds.data<long>().ToArray());
        batch.Validate((BagelTestModels.Config() with { InterpolatePos = true }).BatchLimits);

        // One training step of the tiny composite on that batch: finite losses and a gradient through the latent path.
        using BagelModel model = BagelTestModels.Model();
        using (torch.no_grad()) model.Llm2Vae!.weight!.normal_(0, 0.1, new Generator(4));
        IReadOnlyList<Tensor> latents = BagelTestModels.RandomLatents(batch)!;
        try
        {
            using var optimizer = torch.optim.SGD(model.parameters().Where(p => p.requires_grad), 0.1);
            using BagelForwardOutput output = model.Forward(batch, latents, new SeededRandomSource(3));
            using BagelLosses losses = BagelLoss.Reduce(output, batch, LossNormalizers.SingleProcess(batch));
            Assert.True(float.IsFinite(losses.Total.item<float>()));
            losses.Total.backward();
            Tensor grad = model.Vae2Llm!.weight!.grad!;
            Assert.True(grad.abs().max().item<float>() > 0);
            optimizer.step();
        }
        finally
        {
            foreach (Tensor latent in latents) latent.Dispose();
        }
    }

    [Fact]
    public async Task WithoutInterpolatePosTheIdsStayRowTimesGPlusColAndGridsBeyondGAreRejected()
    {
        // The extrapolated layout is still checked exactly: the 80x96 image (5x6 tokens) does not fit G = 4.
        using PackingLoop loop = Loop(interpolate: false, new SeededRandomSource(1), new SeededRandomSource(2));
        var error = await Assert.ThrowsAsync<PackedBatchValidationException>(() => loop.NextBatchAsync(TestContext.Current.CancellationToken).AsTask());
        Assert.Equal("patchified_vae_latent_shapes", error.Field);
    }

    [Fact]
    public void InterpolatedIdsOutsideTheGridOrOutOfOrderAreStillRejected()
    {
        using var image = Image(32, 32); // 2x2 tokens
        PackedBatch Build(long[] ids)
        {
            var builder = new PackedBatchBuilder();
            builder.AddSample(new SampleLayout(6, [new AttentionSplit(6, AttentionMode.Full)]), SequencePackerTests.Index("t2i", 0));
            builder.TextIds.AddRange([1, 2]);
            builder.TextIndexes.AddRange([0, 5]);
            builder.PositionIds.AddRange([0, 0, 0, 0, 0, 0]);
            builder.AddVaeImage(image);
            builder.LatentPositionIds.AddRange(ids);
            builder.VaeTokenIndexes.AddRange([1, 2, 3, 4]);
            builder.Timesteps.AddRange([float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity]);
            return builder.Build(limits: new PackedBatchLimits { MaxLatentSize = 4, InterpolatedLatentPositions = true });
        }

        using (Build([0, 2, 8, 10])) { } // the reference's interpolated ids of a 2x2 grid on G = 4
        Assert.Equal("packed_latent_position_ids", Assert.Throws<PackedBatchValidationException>(() => Build([0, 2, 8, 16])).Field);
        Assert.Equal("packed_latent_position_ids", Assert.Throws<PackedBatchValidationException>(() => Build([2, 0, 8, 10])).Field);
    }

    [Fact]
    public void ThePixelsPerLatentTokenComeFromTheBuilderAndTravelWithTheBatch()
    {
        using var image = Image(16, 24); // with 8 px per token (latent patch 1 on FLUX's 8x VAE): 2x3 tokens
        var builder = new PackedBatchBuilder { VaePixelsPerLatentToken = 8 };
        builder.AddSample(new SampleLayout(8, [new AttentionSplit(8, AttentionMode.Full)]), SequencePackerTests.Index("t2i", 0));
        builder.TextIds.AddRange([1, 2]);
        builder.TextIndexes.AddRange([0, 7]);
        builder.PositionIds.AddRange(Enumerable.Repeat(0L, 8));
        Assert.Equal(new LatentGrid(2, 3), builder.AddVaeImage(image));
        Assert.Throws<InvalidOperationException>(() => builder.VaePixelsPerLatentToken = 16);
        builder.LatentPositionIds.AddRange([0, 1, 2, 4, 5, 6]);
        builder.VaeTokenIndexes.AddRange([1, 2, 3, 4, 5, 6]);
        builder.Timesteps.AddRange(Enumerable.Repeat(float.NegativeInfinity, 6));
        using PackedBatch batch = builder.Build(limits: new PackedBatchLimits { MaxLatentSize = 4 });
        Assert.Equal(8, batch.Vae!.PixelsPerLatentToken);
        using PackedBatch copy = batch.To(torch.CPU);
        Assert.Equal(8, copy.Vae!.PixelsPerLatentToken);
        Assert.Throws<ArgumentException>(() => new PackedBatchBuilder().AddVaeImage(image)); // 24 is no multiple of the default 16
    }

    [Fact]
    public void ThePackerRefusesABuilderWithAnotherStrideThanItsOptions()
    {
        var packer = new SequencePacker(new PackingOptions { PixelsPerLatentToken = 8 }, BagelTestModels.Tokens);
        using PackableSample sample = T2I(0);
        var error = Assert.Throws<ArgumentException>(() => packer.Pack(new PackedBatchBuilder(), sample, new SeededRandomSource(1), new SeededRandomSource(2), []));
        Assert.Contains("PixelsPerLatentToken", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheTokenEstimateCountsVaeImagesAtTheGivenStride()
    {
        PlanItem[] plan = [PlanItem.Text(true, false), PlanItem.NoisyVaeImage()];
        using var atDefault = new PackableSample(SequencePackerTests.Index("t2i", 0), "a", plan, [[1, 2]], [Image(32, 48)]);
        using var atEight = new PackableSample(SequencePackerTests.Index("t2i", 1), "b", plan, [[1, 2]], [Image(32, 48)], vaeStride: 8);
        Assert.Equal(2 + 2 * 3, atDefault.NumTokens);
        Assert.Equal(2 + 4 * 6, atEight.NumTokens);
    }
}
