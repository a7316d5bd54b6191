using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;
using Bagel.Data.Packing;
using Bagel.Data.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Data.Packing;

public sealed class SequencePackerTests
{
    internal static readonly BagelSpecialTokenIds Tokens = new(BosTokenId: 151644, EosTokenId: 151645, StartOfImage: 151652, EndOfImage: 151653);

    internal static SampleDataIndex Index(string group, long row) => new(group, 0, SourcePosition.Vlm(row));

    internal static PackableSample T2I(int[] caption, int height, int width, long row = 0) =>
        new(Index("t2i_pretrain", row), $"row {row}", [PlanItem.Text(enableCfg: true, loss: false), PlanItem.NoisyVaeImage()],
            [caption], [torch.rand(3, height, width) * 2 - 1]);

    private static (PackedBatch Batch, List<Tensor> Owned) Pack(PackingOptions options, IRandomSource dropout, IRandomSource timesteps, params PackableSample[] samples)
    {
        var packer = new SequencePacker(options, Tokens);
        var builder = new PackedBatchBuilder();
        var owned = new List<Tensor>();
        foreach (var s in samples) packer.Pack(builder, s, dropout, timesteps, owned);
        return (builder.Build(), owned);
    }

    [Fact]
    public void T2IWorkedExampleOfTheSpec()
    {
        // training.md 4.3: a 3-token caption and a 256x256 image.
        using var sample = T2I([11, 12, 13], 256, 256);
        var dropout = new ReplayRandomSource([RecordedDraw.Uniform(0.5)]);           // 0.5 >= 0.1: caption kept
        var timesteps = new ReplayRandomSource([RecordedDraw.StandardNormal(-0.25)]);
        var (batch, owned) = Pack(new PackingOptions(), dropout, timesteps, sample);
        using (batch)
        {
            Assert.Equal(263, batch.SequenceLength);
            Assert.Equal([5, 258], batch.SplitLens);
            Assert.Equal([AttentionMode.Causal, AttentionMode.Noise], batch.AttnModes);
            long[] positions = batch.PackedPositionIds.data<long>().ToArray();
            Assert.Equal([0L, 1, 2, 3, 4], positions[..5]);
            Assert.All(positions[5..], p => Assert.Equal(5L, p));
            Assert.Equal([151644L, 11, 12, 13, 151645, 151652, 151653], batch.PackedTextIds.data<long>().ToArray());
            Assert.Equal([0L, 1, 2, 3, 4, 5, 262], batch.PackedTextIndexes.data<long>().ToArray());
            Assert.Equal(Enumerable.Range(6, 256).Select(i => (long)i), batch.Vae!.PackedVaeTokenIndexes.data<long>().ToArray());
            Assert.Equal(Enumerable.Range(6, 256).Select(i => (long)i), batch.Vae.MseLossIndexes.data<long>().ToArray());
            Assert.All(batch.Vae.PackedTimesteps.data<float>().ToArray(), t => Assert.Equal(-0.25f, t));
            Assert.Equal(new LatentGrid(16, 16), batch.Vae.LatentShapes[0]);
            Assert.Equal(Enumerable.Range(0, 16).SelectMany(r => Enumerable.Range(0, 16).Select(c => (long)(r * 32 + c))), batch.Vae.PackedLatentPositionIds.data<long>().ToArray());
            Assert.Null(batch.TextLoss);                                              // the caption carries no loss
            Assert.Null(batch.Vit);
        }
        owned.ForEach(t => t.Dispose());
        dropout.EnsureFullyConsumed();
        timesteps.EnsureFullyConsumed();
    }

    [Fact]
    public void DroppedCaptionLeavesOneSplitWithAllPositionIdsZero()
    {
        using var sample = T2I([11, 12, 13], 256, 256);
        var (batch, _) = Pack(new PackingOptions(), new ReplayRandomSource([RecordedDraw.Uniform(0.05)]), new ReplayRandomSource([RecordedDraw.StandardNormal(1.0)]), sample);
        using (batch)
        {
            Assert.Equal([258], batch.SplitLens);
            Assert.All(batch.PackedPositionIds.data<long>().ToArray(), p => Assert.Equal(0L, p));
        }
    }

    [Fact]
    public void EditChainSharesRopeBetweenNoisyTargetAndItsCleanCopyAndDroppedImagesAdvanceRope()
    {
        // clean vae (cfg), vit (cfg), text (cfg), noisy vae, clean vae (cfg), vit (cfg), text (cfg), noisy vae
        PlanItem[] plan =
        [
            PlanItem.CleanVaeImage(true), PlanItem.VitImage(true), PlanItem.Text(true, false), PlanItem.NoisyVaeImage(),
            PlanItem.CleanVaeImage(true), PlanItem.VitImage(true), PlanItem.Text(true, false), PlanItem.NoisyVaeImage(),
        ];
        Tensor Img(int h, int w) => torch.zeros(3, h, w);
        using var sample = new PackableSample(Index("unified_edit", 3), "edit", plan, [[1, 2], [3]],
            [Img(32, 32), Img(28, 28), Img(32, 48), Img(32, 48), Img(28, 42), Img(16, 16)]);
        // Draws: clean vae kept, vit DROPPED, text kept, clean vae kept, vit kept, text kept.
        var dropout = new ReplayRandomSource(new[] { 0.9, 0.1, 0.9, 0.9, 0.9, 0.9 }.Select(RecordedDraw.Uniform));
        var timesteps = new ReplayRandomSource([RecordedDraw.StandardNormal(0.3), RecordedDraw.StandardNormal(-1.2)]);
        var options = new PackingOptions { VitCondDropoutProb = 0.3, VaeCondDropoutProb = 0.3 };
        var (batch, owned) = Pack(options, dropout, timesteps, sample);
        using (batch)
        {
            // splits: clean(4+2) full, text(2+2) causal, noisy(6+2) noise, clean(6+2) full, vit(6+2) full, text(1+2) causal, noisy(1+2) noise
            Assert.Equal([6, 4, 8, 8, 8, 3, 3], batch.SplitLens);
            Assert.Equal([AttentionMode.Full, AttentionMode.Causal, AttentionMode.Noise, AttentionMode.Full, AttentionMode.Full, AttentionMode.Causal, AttentionMode.Noise], batch.AttnModes);
            long[] pos = batch.PackedPositionIds.data<long>().ToArray();
            // rope: clean 0 (->1), dropped vit (->2), text 2..5 (->6), noisy 6 (stays), clean 6 (->7), vit 7 (->8), text 8..10, noisy 11
            long[] expected = [.. Enumerable.Repeat(0L, 6), 2, 3, 4, 5, .. Enumerable.Repeat(6L, 8), .. Enumerable.Repeat(6L, 8), .. Enumerable.Repeat(7L, 8), 8, 9, 10, .. Enumerable.Repeat(11L, 3)];
            Assert.Equal(expected, pos);
            Assert.Equal([float.NegativeInfinity, 0.3f, -1.2f], batch.Vae!.PackedTimesteps.data<float>().ToArray().Distinct());
            Assert.Equal(4, batch.Vae.LatentShapes.Count);
            Assert.Equal([4L, 3, 32, 48], batch.Vae.PaddedImages.shape);            // zero-padded to the largest H and W
            Assert.Equal([6L], batch.Vit!.VitTokenSeqlens.data<long>().ToArray());    // only the kept ViT image
        }
        owned.ForEach(t => t.Dispose());
    }

    [Fact]
    public void TextLossLabelsAreShiftedWithSquareRootWeights()
    {
        using var sample = new PackableSample(Index("vlm_sft", 0), "vlm", [PlanItem.Text(false, false), PlanItem.Text(false, true)], [[5, 6], [7, 8, 9]], []);
        var (batch, _) = Pack(new PackingOptions(), new ReplayRandomSource([]), new ReplayRandomSource([]), sample);
        using (batch)
        {
            // text 1: positions 0..3 (bos 5 6 eos), text 2: positions 4..8 (bos 7 8 9 eos); loss on bos,7,8,9 -> labels 7,8,9,eos
            Assert.Equal([4L, 5, 6, 7], batch.TextLoss!.CeLossIndexes.data<long>().ToArray());
            Assert.Equal([7L, 8, 9, 151645], batch.TextLoss.PackedLabelIds.data<long>().ToArray());
            Assert.All(batch.TextLoss.CeLossWeights.data<float>().ToArray(), w => Assert.Equal(0.5f, w)); // 1/sqrt(4)
            Assert.Equal([0L, 1, 2, 3, 4, 5, 6, 7, 8], batch.PackedPositionIds.data<long>().ToArray());
        }
    }
}
