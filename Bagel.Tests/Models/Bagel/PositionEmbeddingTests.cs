using Bagel.Models.Bagel;
using Bagel.Tests.Models.FluxVae;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Checks <see cref="PositionEmbedding"/> and <see cref="SinCosPositionTable"/> against the reference's
/// get_2d_sincos_pos_embed / PositionEmbedding.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class PositionEmbeddingTests
{
    [Fact]
    public void Table_EqualsReferenceLatentPosEmbed_Exactly()
    {
        using var embedding = new PositionEmbedding(GenerationPathFixture.MaxLatentSize, GenerationPathFixture.HiddenSize);
        using Tensor expected = GenerationPathFixture.Read("latent_pos_embed.pos_embed");
        Assert.Equal(ScalarType.Float32, embedding.Table.dtype);
        Assert.True(expected.allclose(embedding.Table, rtol: 0, atol: 0), "float32 table differs from the reference's");
        Assert.False(embedding.Table.requires_grad);
        Assert.Equal(["pos_embed"], embedding.state_dict().Keys);
    }

    [Fact]
    public void Float64Table_MatchesReferenceNumpyBuild()
    {
        using Tensor expected = GenerationPathFixture.Read("fixture.sincos_20x3");
        using Tensor actual = SinCosPositionTable.Build(20, 3);
        Assert.Equal(expected.shape, actual.shape);
        using Tensor difference = (actual - expected).abs().max();
        // NumPy may use a vectorized sin/cos; both are within an ulp of the true value.
        Assert.True(difference.item<double>() <= 1e-15, $"float64 table differs by {difference.item<double>():E3}");
    }

    [Fact]
    public void Forward_LooksUpRowsByRowTimesGridPlusColumn_ColumnHalfFirst()
    {
        using var embedding = new PositionEmbedding(5, 8);
        using Tensor ids = tensor(new long[] { 1 * 5 + 3 });
        using Tensor row = embedding.forward(ids);
        Assert.Equal([1L, 8], row.shape);
        // Column 3 in features 0..3 (sin 3ω0, sin 3ω1, cos 3ω0, cos 3ω1), row 1 in features 4..7; ω = 1, 1/100.
        float[] values = row.data<float>().ToArray();
        Assert.Equal((float)Math.Sin(3), values[0]);
        Assert.Equal((float)Math.Sin(0.03), values[1]);
        Assert.Equal((float)Math.Cos(3), values[2]);
        Assert.Equal((float)Math.Sin(1), values[4]);
        Assert.Equal((float)Math.Cos(0.01), values[7]);
    }

    [Fact]
    public void Reset_RebuildsTheTableAfterAnOverwrite()
    {
        using var embedding = new PositionEmbedding(3, 4);
        using Tensor original = embedding.Table.clone();
        using (no_grad()) embedding.Table.fill_(7);
        embedding.Reset();
        Assert.True(original.allclose(embedding.Table, rtol: 0, atol: 0));
    }
}
