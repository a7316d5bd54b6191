using System.Text.Json;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;
using Bagel.Data.Packing;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Data.Packing;

/// <summary>
/// Packs the same three samples (T2I, VLM, one-step edit) that the reference's own <c>pack_sequence</c>/<c>to_tensor</c>
/// packed into Fixtures/Batching/reference_packs.json (see its README), feeding the reference's recorded timestep
/// draws, and requires every field to be equal. The reference ran in flex mode, whose trailing padding split is not
/// part of our contract and is dropped before comparing.
/// </summary>
public sealed class SequencePackerParityTests
{
    private static readonly JsonElement Fixture = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "Batching", "reference_packs.json"))).RootElement;

    private static JsonElement Batch(string name) => Fixture.GetProperty("batches").GetProperty(name);

    private static float[] Floats(JsonElement t) => [.. t.GetProperty("values").EnumerateArray().Select(v => v.ValueKind == JsonValueKind.String ? ParseSpecial(v.GetString()!) : v.GetSingle())];

    private static float ParseSpecial(string text) => text switch
    {
        "-inf" => float.NegativeInfinity,
        "inf" => float.PositiveInfinity,
        _ => float.NaN,
    };

    private static long[] Longs(JsonElement t) => [.. t.GetProperty("values").EnumerateArray().Select(v => v.GetInt64())];

    private static long[] Shape(JsonElement t) => [.. t.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64())];

    /// <summary>Rebuilds the samples' images from the no-dropout batch (it holds every image).</summary>
    private static (Tensor T2I, Tensor Vlm, Tensor EditStart, Tensor EditVit, Tensor EditFinal) Images()
    {
        JsonElement b = Batch("no_dropout");
        using var padded = torch.tensor(Floats(b.GetProperty("padded_images"))).reshape(Shape(b.GetProperty("padded_images")));
        var shapes = b.GetProperty("patchified_vae_latent_shapes").EnumerateArray().Select(s => (H: s[0].GetInt32() * 16, W: s[1].GetInt32() * 16)).ToArray();
        Tensor Vae(int i) => padded[i].narrow(1, 0, shapes[i].H).narrow(2, 0, shapes[i].W).clone();
        using var vit = torch.tensor(Floats(b.GetProperty("packed_vit_tokens"))).reshape(-1, 588);
        // Unpatchify (row, col, py, px, c) patches of 14 px back into [3, H, W].
        Tensor Unpatchify(long first, int rows, int cols) =>
            vit.narrow(0, first, rows * cols).reshape(rows, cols, 14, 14, 3).permute(4, 0, 2, 1, 3).reshape(3, rows * 14, cols * 14).contiguous();
        return (Vae(0), Unpatchify(0, 2, 3), Vae(1), Unpatchify(6, 2, 2), Vae(2));
    }

    private static PackableSample[] Samples()
    {
        var (t2i, vlm, editStart, editVit, editFinal) = Images();
        return
        [
            new(new SampleDataIndex("t2i_pretrain", 0, SourcePosition.T2I(0, 1, 7)), "t2i",
                [PlanItem.Text(true, false), PlanItem.NoisyVaeImage()], [[11, 12, 13, 14, 15]], [t2i]),
            new(new SampleDataIndex("vlm_sft", 1, SourcePosition.Vlm(12)), "vlm",
                [PlanItem.VitImage(false), PlanItem.Text(false, false), PlanItem.Text(false, true)], [[21, 22, 23], [31, 32, 33, 34]], [vlm]),
            new(new SampleDataIndex("unified_edit", 0, SourcePosition.Edit(3, 5)), "edit",
                [PlanItem.CleanVaeImage(true), PlanItem.VitImage(true), PlanItem.Text(true, false), PlanItem.NoisyVaeImage()], [[41, 42]], [editStart, editVit, editFinal]),
        ];
    }

    [Theory]
    [InlineData("no_dropout", 0.0)]
    [InlineData("all_cfg_dropped", 1.0)]
    public void EveryFieldEqualsTheReferencesPack(string name, double dropout)
    {
        JsonElement expected = Batch(name);
        var options = new PackingOptions
        {
            TextCondDropoutProb = dropout, VitCondDropoutProb = dropout, VaeCondDropoutProb = dropout,
            MaxLatentSize = Fixture.GetProperty("max_latent_size").GetInt32(), MaxNumTokens = 512, ExpectedNumTokens = 512, MaxNumTokensPerSample = 512,
        };
        float[] timesteps = Floats(expected.GetProperty("packed_timesteps"));
        long[] vaeIndexes = Longs(expected.GetProperty("packed_vae_token_indexes"));
        var mse = Longs(expected.GetProperty("mse_loss_indexes")).ToHashSet();
        // One recorded np.random.randn() per noisy image: the value at the first token of each noisy run.
        var draws = timesteps.Where((t, i) => mse.Contains(vaeIndexes[i]) && (i == 0 || !mse.Contains(vaeIndexes[i - 1]) || vaeIndexes[i - 1] != vaeIndexes[i] - 1))
                             .Select(t => RecordedDraw.StandardNormal(t));
        var uniform = new ReplayRandomSource(Enumerable.Repeat(RecordedDraw.Uniform(0.5), 5)); // with p = 0 or 1 the value does not matter
        var normal = new ReplayRandomSource(draws);
        var packer = new SequencePacker(options, SequencePackerTests.Tokens);
        var builder = new PackedBatchBuilder();
        var owned = new List<Tensor>();
        PackableSample[] samples = Samples();
        foreach (PackableSample s in samples) packer.Pack(builder, s, uniform, normal, owned);
        using PackedBatch batch = builder.Build(limits: new PackedBatchLimits { MaxLatentSize = options.MaxLatentSize });
        foreach (var d in samples.Cast<IDisposable>().Concat(owned)) d.Dispose();
        normal.EnsureFullyConsumed();

        int[] sampleLens = [.. expected.GetProperty("sample_lens").EnumerateArray().Select(v => v.GetInt32())];
        Assert.Equal(expected.GetProperty("sequence_length").GetInt32(), batch.SequenceLength);
        Assert.Equal(sampleLens[..^1], batch.SampleLens);  // the reference's last entry is the flex padding
        Assert.Equal(expected.GetProperty("split_lens").EnumerateArray().Select(v => v.GetInt32()).SkipLast(1), batch.SplitLens);
        Assert.Equal(expected.GetProperty("attn_modes").EnumerateArray().Select(v => Enum.Parse<AttentionMode>(v.GetString()!, ignoreCase: true)).SkipLast(1), batch.AttnModes);
        Assert.Equal(Longs(expected.GetProperty("packed_text_ids")), batch.PackedTextIds.data<long>().ToArray());
        Assert.Equal(Longs(expected.GetProperty("packed_text_indexes")), batch.PackedTextIndexes.data<long>().ToArray());
        Assert.Equal(Longs(expected.GetProperty("packed_position_ids")), batch.PackedPositionIds.data<long>().ToArray());
        Assert.Equal(Shape(expected.GetProperty("padded_images")), batch.Vae!.PaddedImages.shape);
        Assert.Equal(Floats(expected.GetProperty("padded_images")), batch.Vae.PaddedImages.data<float>().ToArray());
        Assert.Equal(expected.GetProperty("patchified_vae_latent_shapes").EnumerateArray().Select(s => new LatentGrid(s[0].GetInt32(), s[1].GetInt32())), batch.Vae.LatentShapes);
        Assert.Equal(Longs(expected.GetProperty("packed_latent_position_ids")), batch.Vae.PackedLatentPositionIds.data<long>().ToArray());
        Assert.Equal(vaeIndexes, batch.Vae.PackedVaeTokenIndexes.data<long>().ToArray());
        Assert.Equal(timesteps, batch.Vae.PackedTimesteps.data<float>().ToArray());
        Assert.Equal(Longs(expected.GetProperty("mse_loss_indexes")), batch.Vae.MseLossIndexes.data<long>().ToArray());
        Assert.Equal(Floats(expected.GetProperty("packed_vit_tokens")), batch.Vit!.PackedVitTokens.data<float>().ToArray());
        Assert.Equal(Longs(expected.GetProperty("packed_vit_position_ids")), batch.Vit.PackedVitPositionIds.data<long>().ToArray());
        Assert.Equal(Longs(expected.GetProperty("packed_vit_token_indexes")), batch.Vit.PackedVitTokenIndexes.data<long>().ToArray());
        Assert.Equal(Longs(expected.GetProperty("vit_token_seqlens")), batch.Vit.VitTokenSeqlens.data<long>().ToArray());
        Assert.Equal(Longs(expected.GetProperty("packed_label_ids")), batch.TextLoss!.PackedLabelIds.data<long>().ToArray());
        Assert.Equal(Longs(expected.GetProperty("ce_loss_indexes")), batch.TextLoss.CeLossIndexes.data<long>().ToArray());
        Assert.Equal(Floats(expected.GetProperty("ce_loss_weights")), batch.TextLoss.CeLossWeights.data<float>().ToArray());
    }
}
