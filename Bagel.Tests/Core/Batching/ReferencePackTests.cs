using System.Text.Json;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Batching;

/// <summary>
/// Batches packed by the reference's own code (Fixtures/Batching/reference_packs.json) must build and validate
/// unchanged, and the builder's padding must reproduce the reference's padded_images.
/// </summary>
public sealed class ReferencePackTests
{
    private static readonly JsonElement Fixture = JsonDocument.Parse(File.ReadAllText(
        Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "Batching", "reference_packs.json"))).RootElement;

    [Theory]
    [InlineData("no_dropout")]
    [InlineData("all_cfg_dropped")]
    public void ReferencePackValidatesAndRebuildsExactly(string name)
    {
        JsonElement reference = Fixture.GetProperty("batches").GetProperty(name);
        using DisposeScope scope = torch.NewDisposeScope();
        PackedBatchBuilder builder = ToBuilder(reference);
        var limits = new PackedBatchLimits { MaxLatentSize = Fixture.GetProperty("max_latent_size").GetInt32(), VitMaxPatchesPerSide = 70 };

        using PackedBatch batch = builder.Build(limits: limits);

        Assert.Equal(reference.GetProperty("sequence_length").GetInt32(), batch.SequenceLength);
        Assert.True(TensorOf(reference.GetProperty("padded_images")).Equals(batch.Vae!.PaddedImages));
        Assert.True(TensorOf(reference.GetProperty("packed_vit_tokens")).Equals(batch.Vit!.PackedVitTokens));
        Assert.True(TensorOf(reference.GetProperty("packed_timesteps")).Equals(batch.Vae.PackedTimesteps));
        Assert.Equal(ScalarType.Float32, batch.TextLoss!.CeLossWeights.dtype);
    }

    [Fact]
    public void ReferencePackWithACorruptedIndexIsRejected()
    {
        JsonElement reference = Fixture.GetProperty("batches").GetProperty("no_dropout");
        using DisposeScope scope = torch.NewDisposeScope();
        PackedBatchBuilder builder = ToBuilder(reference);
        builder.MseLossIndexes[0] = builder.MseLossIndexes[0] - 1; // the vision-start marker before the noisy image

        var ex = Assert.Throws<PackedBatchValidationException>(() => builder.Build());
        Assert.Equal("mse_loss_indexes", ex.Field);
    }

    /// <summary>Fills a builder from the reference's to_tensor() output (flex padding entry removed).</summary>
    private static PackedBatchBuilder ToBuilder(JsonElement r)
    {
        var builder = new PackedBatchBuilder();
        int[] sampleLens = [.. r.GetProperty("sample_lens").EnumerateArray().Select(e => e.GetInt32()).SkipLast(1)];
        int[] splitLens = [.. r.GetProperty("split_lens").EnumerateArray().Select(e => e.GetInt32()).SkipLast(1)];
        AttentionMode[] modes = [.. r.GetProperty("attn_modes").EnumerateArray().Select(e => Enum.Parse<AttentionMode>(e.GetString()!, ignoreCase: true)).SkipLast(1)];
        JsonElement[] dataIndexes = [.. r.GetProperty("batch_data_indexes").EnumerateArray()];
        int split = 0;
        for (int s = 0; s < sampleLens.Length; s++)
        {
            var splits = new List<AttentionSplit>();
            for (int covered = 0; covered < sampleLens[s]; split++)
            {
                splits.Add(new AttentionSplit(splitLens[split], modes[split]));
                covered += splitLens[split];
            }
            builder.AddSample(new SampleLayout(sampleLens[s], splits), DataIndexOf(dataIndexes[s]));
        }
        builder.TextIds.AddRange(Longs(r, "packed_text_ids"));
        builder.TextIndexes.AddRange(Longs(r, "packed_text_indexes"));
        builder.PositionIds.AddRange(Longs(r, "packed_position_ids"));

        Tensor padded = TensorOf(r.GetProperty("padded_images"));
        JsonElement[] shapes = [.. r.GetProperty("patchified_vae_latent_shapes").EnumerateArray()];
        for (int i = 0; i < shapes.Length; i++)
            builder.AddVaeImage(padded[i].narrow(1, 0, 16 * shapes[i][0].GetInt64()).narrow(2, 0, 16 * shapes[i][1].GetInt64()));
        builder.LatentPositionIds.AddRange(Longs(r, "packed_latent_position_ids"));
        builder.VaeTokenIndexes.AddRange(Longs(r, "packed_vae_token_indexes"));
        builder.Timesteps.AddRange(Floats(r, "packed_timesteps"));
        builder.MseLossIndexes.AddRange(Longs(r, "mse_loss_indexes"));

        Tensor vitTokens = TensorOf(r.GetProperty("packed_vit_tokens"));
        long offset = 0;
        foreach (long count in Longs(r, "vit_token_seqlens"))
        {
            builder.AddVitImage(vitTokens.narrow(0, offset, count));
            offset += count;
        }
        builder.VitPositionIds.AddRange(Longs(r, "packed_vit_position_ids"));
        builder.VitTokenIndexes.AddRange(Longs(r, "packed_vit_token_indexes"));
        builder.LabelIds.AddRange(Longs(r, "packed_label_ids"));
        builder.CeLossIndexes.AddRange(Longs(r, "ce_loss_indexes"));
        builder.CeLossWeights.AddRange(Floats(r, "ce_loss_weights"));
        return builder;
    }

    private static SampleDataIndex DataIndexOf(JsonElement e)
    {
        JsonElement position = e.GetProperty("data_indexes");
        SourcePosition source = position.ValueKind == JsonValueKind.Number
            ? SourcePosition.Vlm(position.GetInt64())
            : position.GetArrayLength() == 3
                ? SourcePosition.T2I(position[0].GetInt64(), position[1].GetInt64(), position[2].GetInt64())
                : SourcePosition.Edit(position[0].GetInt64(), position[1].GetInt64());
        return new SampleDataIndex(e.GetProperty("dataset_name").GetString()!, e.GetProperty("worker_id").GetInt32(), source);
    }

    private static long[] Longs(JsonElement r, string field)
    {
        JsonElement tensor = r.GetProperty(field);
        Assert.Equal("int64", tensor.GetProperty("dtype").GetString());
        return [.. tensor.GetProperty("values").EnumerateArray().Select(v => v.GetInt64())];
    }

    private static float[] Floats(JsonElement r, string field)
    {
        JsonElement tensor = r.GetProperty(field);
        Assert.Equal("float32", tensor.GetProperty("dtype").GetString());
        return [.. tensor.GetProperty("values").EnumerateArray().Select(v => FloatOf(v))];
    }

    private static Tensor TensorOf(JsonElement tensor)
    {
        Assert.Equal("float32", tensor.GetProperty("dtype").GetString());
        float[] values = [.. tensor.GetProperty("values").EnumerateArray().Select(v => FloatOf(v))];
        long[] shape = [.. tensor.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64())];
        return torch.tensor(values, shape);
    }

    /// <summary>Python's json writes non-finite values as the strings "inf", "-inf", "nan" in this fixture.</summary>
    private static float FloatOf(JsonElement v) => v.ValueKind != JsonValueKind.String ? v.GetSingle() : v.GetString() switch
    {
        "-inf" => float.NegativeInfinity,
        "inf" => float.PositiveInfinity,
        _ => float.NaN,
    };
}
