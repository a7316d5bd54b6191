using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Data.Packing;
using Bagel.Models.Bagel;
using Bagel.Training.Options;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Data.Packing;

/// <summary>
/// <c>special_token_loss</c> set from the options: the flag binds from the command line, the data wiring passes it to
/// the packer, and a caption's closing <c>&lt;|im_end|&gt;</c> then carries the CE label <c>&lt;|vision_start|&gt;</c>
/// (weight 1) before the image to generate, which the loss counts.
/// </summary>
public sealed class SpecialTokenLossTests
{
    private static PackedBatch Pack(PackingOptions options, params PackableSample[] samples)
    {
        var packer = new SequencePacker(options, SequencePackerTests.Tokens);
        var builder = new PackedBatchBuilder();
        var owned = new List<Tensor>();
        try
        {
            foreach (PackableSample sample in samples) packer.Pack(builder, sample, new SeededRandomSource(1), new SeededRandomSource(2), owned);
            return builder.Build();
        }
        finally
        {
            owned.ForEach(t => t.Dispose());
            foreach (PackableSample sample in samples) sample.Dispose();
        }
    }

    private static PackingOptions NoDropout(bool specialTokenLoss) =>
        new() { SpecialTokenLoss = specialTokenLoss, TextCondDropoutProb = 0, VitCondDropoutProb = 0, VaeCondDropoutProb = 0 };

    [Fact]
    public void TheFlagBindsAndTheDataWiringPassesItToThePacker()
    {
        TrainingConfiguration on = ReferenceCommandLine.Bind(["--special_token_loss", "True"]);
        Assert.True(on.Training.SpecialTokenLoss);
        Assert.True(DataWiring.ToPackingOptions(on).SpecialTokenLoss);
        Assert.False(DataWiring.ToPackingOptions(ReferenceCommandLine.Bind([])).SpecialTokenLoss);
    }

    [Fact]
    public void TheCaptionsClosingMarkerPredictsTheImageStartAndCountsInTheCeLoss()
    {
        // 3-token caption + 32x32 image: bos 11 12 13 eos | vision_start, 4 latents, vision_end.
        using (PackedBatch off = Pack(NoDropout(false), SequencePackerTests.T2I([11, 12, 13], 32, 32)))
            Assert.Null(off.TextLoss); // a T2I caption carries no loss by default

        using PackedBatch on = Pack(NoDropout(true), SequencePackerTests.T2I([11, 12, 13], 32, 32), SequencePackerTests.T2I([21], 32, 32, row: 1));
        TextLossFields loss = on.TextLoss!;
        Assert.Equal([4L, 13], loss.CeLossIndexes.data<long>().ToArray());   // each sample's <|im_end|> (the second sample starts at 11)
        Assert.Equal([(long)SequencePackerTests.Tokens.StartOfImage, SequencePackerTests.Tokens.StartOfImage], loss.PackedLabelIds.data<long>().ToArray());
        Assert.Equal([1f, 1f], loss.CeLossWeights.data<float>().ToArray());
        Assert.Equal(SequencePackerTests.Tokens.EosTokenId, on.PackedTextIds.data<long>()[4]);

        // The loss sees them: two CE tokens, reduced like any other label.
        LossNormalizers counts = LossNormalizers.SingleProcess(on);
        Assert.Equal(2, counts.GlobalCeTokens);
        using var output = new BagelForwardOutput(null, torch.tensor(new[] { 1f, 3f }));
        using BagelLosses losses = BagelLoss.Reduce(output, on, counts);
        Assert.Equal(2f, losses.Ce.item<float>());
    }

    [Fact]
    public void OnlyTextBeforeAnImageToGenerateIsLabelled_AndAnItemsOwnLabelWins()
    {
        // VLM: image, question, answer (loss): no noisy VAE image follows any text, so nothing is added.
        PackableSample vlm = new(SequencePackerTests.Index("vlm", 0), "vlm",
            [PlanItem.VitImage(false), PlanItem.Text(false, false), PlanItem.Text(false, true)], [[1, 2], [3]], [torch.rand(3, 28, 28)]);
        using (PackedBatch batch = Pack(NoDropout(true), vlm))
            Assert.Equal(2, batch.TextLoss!.CeLossIndexes.shape[0]); // the answer's two labels only

        // A plan item that sets its own special-token label keeps it.
        PackableSample own = new(SequencePackerTests.Index("t2i", 1), "own",
            [new PlanItem(PlanItemKind.Text, true, false, SpecialTokenLoss: true, SpecialTokenLabel: 7), PlanItem.NoisyVaeImage()], [[5]], [torch.rand(3, 32, 32)]);
        using PackedBatch labelled = Pack(NoDropout(true), own);
        Assert.Equal([7L], labelled.TextLoss!.PackedLabelIds.data<long>().ToArray());
    }
}
