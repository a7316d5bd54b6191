using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Batching;

/// <summary>One test per consistency check of <see cref="PackedBatch.Validate"/>, each corrupting the valid example.</summary>
public sealed class PackedBatchValidationTests : IDisposable
{
    private static readonly PackedBatchLimits Limits = new() { MaxLatentSize = PackedBatchExamples.MaxLatentSize, VitMaxPatchesPerSide = 70, VocabularySize = 151936 };
    private readonly PackedBatchExamples _examples = new();

    public void Dispose() => _examples.Dispose();

    private PackedBatchValidationException Invalid(string field, Action<PackedBatchBuilder> corrupt)
    {
        PackedBatchBuilder builder = _examples.ValidBuilder();
        corrupt(builder);
        var ex = Assert.Throws<PackedBatchValidationException>(() => builder.Build(limits: Limits).Dispose());
        Assert.Equal(field, ex.Field);
        Assert.StartsWith($"Packed batch field '{field}': ", ex.Message, StringComparison.Ordinal);
        return ex;
    }

    [Fact]
    public void EmptyBatchIsRejected() =>
        Assert.Equal("sample_lens", Assert.Throws<PackedBatchValidationException>(() => new PackedBatchBuilder().Build()).Field);

    [Fact]
    public void SplitLensMustSumToTheSampleLength() =>
        Invalid("split_lens", b => b.Samples[0] = b.Samples[0] with { Length = 12 });

    [Fact]
    public void SplitsMustBeNonEmpty() =>
        Invalid("split_lens", b => b.Samples[0] = new SampleLayout(11, [new(11, AttentionMode.Causal), new(0, AttentionMode.Full)]));

    [Fact]
    public void EverySampleHasOneDataIndex() => Invalid("batch_data_indexes", b => b.DataIndexes.RemoveAt(1));

    [Fact]
    public void PositionIdsCoverEveryToken() => Invalid("packed_position_ids", b => b.PositionIds.RemoveAt(23));

    [Fact]
    public void PositionIdsNeverDecreaseInsideASample()
    {
        var ex = Invalid("packed_position_ids", b => b.PositionIds[3] = 1);
        Assert.Contains("sample 0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PositionIdsMayRestartAtASampleStart()
    {
        // Sample 1 starts at RoPE id 0 after sample 0 ended at 5: valid (checked by the valid example itself).
        using PackedBatch batch = _examples.ValidBuilder().Build(limits: Limits);
        Assert.Equal(0L, batch.PackedPositionIds[11].item<long>());
    }

    [Fact]
    public void TextIdsAndIndexesHaveTheSameLength() => Invalid("packed_text_indexes", b => b.TextIndexes.RemoveAt(0));

    [Fact]
    public void TextIdsAreBelowTheVocabulary() => Invalid("packed_text_ids", b => b.TextIds[1] = 151936);

    [Fact]
    public void IndexesAreStrictlyAscending() =>
        Invalid("packed_text_indexes", b => (b.TextIndexes[1], b.TextIndexes[2]) = (b.TextIndexes[2], b.TextIndexes[1]));

    [Fact]
    public void IndexesLieInsideTheSequence() => Invalid("packed_text_indexes", b => b.TextIndexes[^1] = 24);

    [Fact]
    public void TextVitAndVaePositionsAreDisjoint()
    {
        var ex = Invalid("packed_vae_token_indexes", b =>
        {
            b.VaeTokenIndexes[0] = 5; // also a text position (vision start)
            b.TextIndexes.Remove(6);
        });
        Assert.Contains("packed_text_indexes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryPositionBelongsToSomeField() =>
        Invalid("sequence_length", b => { b.TextIndexes.Remove(0); b.TextIds.RemoveAt(0); });

    [Fact]
    public void LatentTokenCountMatchesTheGrids() =>
        Invalid("packed_vae_token_indexes", b => b.VaeTokenIndexes.RemoveAt(4));

    [Fact]
    public void LatentPositionIdsAreRowTimesMaxLatentSizePlusColumn() =>
        Invalid("packed_latent_position_ids", b => b.LatentPositionIds[2] = 2); // row 1, col 0 with G = 4 is 4

    [Fact]
    public void LatentGridsFitMaxLatentSize()
    {
        PackedBatchBuilder builder = _examples.ValidBuilder();
        var ex = Assert.Throws<PackedBatchValidationException>(() => builder.Build(limits: new PackedBatchLimits { MaxLatentSize = 1 }));
        Assert.Equal("patchified_vae_latent_shapes", ex.Field);
        Assert.Contains("max_latent_size 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OneTimestepIsSharedByAnImage() => Invalid("packed_timesteps", b => b.Timesteps[1] = 0.4f);

    [Fact]
    public void TimestepsAreFiniteOrMinusInfinity() =>
        Invalid("packed_timesteps", b => { for (int i = 0; i < 4; i++) b.Timesteps[i] = float.NaN; });

    [Fact]
    public void MseIndexesAreNoisyLatentSlots() => Invalid("mse_loss_indexes", b => b.MseLossIndexes.Add(22)); // clean latent

    [Fact]
    public void EveryNoisyLatentSlotCarriesTheMseLoss() => Invalid("mse_loss_indexes", b => b.MseLossIndexes.RemoveAt(3));

    [Fact]
    public void NoisyLatentsLieInImageSplits() =>
        Invalid("mse_loss_indexes", b => b.Samples[0] = SampleLayout.FromSplits(new(5, AttentionMode.Causal), new(6, AttentionMode.Causal)));

    [Fact]
    public void VitPatchCountMatchesTheSeqlens() => Invalid("vit_token_seqlens", b => b.VitTokenSeqlens[0] = 5);

    [Fact]
    public void VitPositionIdsStayInsideThePatchGrid() => Invalid("packed_vit_position_ids", b => b.VitPositionIds[3] = 70 * 70);

    [Fact]
    public void CeIndexesMatchTheLabels() => Invalid("ce_loss_indexes", b => b.CeLossIndexes.RemoveAt(2));

    [Fact]
    public void CeLabelsAreBelowTheVocabulary() => Invalid("packed_label_ids", b => b.LabelIds[0] = -1);

    [Fact]
    public void CeWeightsAreFiniteAndNonNegative() => Invalid("ce_loss_weights", b => b.CeLossWeights[1] = -0.5f);

    [Fact]
    public void IndexTensorsAreInt64()
    {
        using var batch = new PackedBatch([SampleLayout.FromSplits(new AttentionSplit(2, AttentionMode.Causal))],
            torch.tensor(new[] { 1, 2 }), torch.tensor(new long[] { 0, 1 }), torch.tensor(new long[] { 0, 1 }),
            null, null, null, [new SampleDataIndex("g", 0, SourcePosition.Vlm(0))]);
        var ex = Assert.Throws<PackedBatchValidationException>(() => batch.Validate());
        Assert.Equal("packed_text_ids", ex.Field);
        Assert.Contains("Int32", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AllTensorsLiveOnOneDevice()
    {
        using var batch = new PackedBatch([SampleLayout.FromSplits(new AttentionSplit(2, AttentionMode.Causal))],
            torch.empty(2, ScalarType.Int64, device: torch.META), torch.tensor(new long[] { 0, 1 }), torch.tensor(new long[] { 0, 1 }),
            null, null, null, [new SampleDataIndex("g", 0, SourcePosition.Vlm(0))]);
        var ex = Assert.Throws<PackedBatchValidationException>(() => batch.Validate());
        Assert.Equal("packed_text_ids", ex.Field);
        Assert.Contains("meta", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PaddedImagesAreFloat32WithThreeChannels()
    {
        using PackedBatch valid = _examples.ValidBuilder().Build();
        VaeImageFields vae = valid.Vae!;
        var badVae = new VaeImageFields(vae.PaddedImages.to(ScalarType.BFloat16), vae.LatentShapes, vae.PackedLatentPositionIds.alias(),
            vae.PackedVaeTokenIndexes.alias(), vae.PackedTimesteps.alias(), vae.MseLossIndexes.alias());
        using var batch = new PackedBatch(valid.Samples, valid.PackedTextIds.alias(), valid.PackedTextIndexes.alias(), valid.PackedPositionIds.alias(),
            badVae, null, null, valid.DataIndexes);
        var ex = Assert.Throws<PackedBatchValidationException>(() => batch.Validate());
        Assert.Equal("padded_images", ex.Field);
    }

    [Fact]
    public void PresentGroupsAreNonEmpty()
    {
        PackedBatchBuilder builder = PackedBatchExamples.TextOnlyBuilder();
        builder.CeLossWeights.Add(1f); // a CE group with weights but no label
        var ex = Assert.Throws<PackedBatchValidationException>(() => builder.Build());
        Assert.Equal("packed_label_ids", ex.Field);
    }

    [Fact]
    public void BuilderRejectsVaeImagesThatAreNotMultiplesOf16()
    {
        using Tensor image = torch.zeros(3, 20, 32);
        var ex = Assert.Throws<ArgumentException>(() => new PackedBatchBuilder().AddVaeImage(image));
        Assert.Contains("20x32", ex.Message, StringComparison.Ordinal);
    }
}
