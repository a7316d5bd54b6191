using Bagel.Models.Bagel;
using Bagel.Tests.Models.FluxVae;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Checks <see cref="TimestepEmbedder"/> against the reference's modeling_utils.TimestepEmbedder.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class TimestepEmbedderTests
{
    [Fact]
    public void FrequencyEmbedding_MatchesReference_CosFirstWithoutScaling()
    {
        using Tensor t = GenerationPathFixture.Read("fixture.embedder_t");
        using Tensor expected = GenerationPathFixture.Read("fixture.embedder_freq");
        using Tensor actual = TimestepEmbedder.FrequencyEmbedding(t);
        ReferenceFixtures.AssertClose(expected, actual, 1e-6, "frequency embedding");
        // t = 0: every cosine is 1 and every sine 0 (no ×1000 scaling could change that, but the order could).
        using Tensor first = actual[0];
        Assert.Equal(1f, first[0].item<float>());
        Assert.Equal(0f, first[128].item<float>());
    }

    [Fact]
    public void Forward_WithReferenceWeights_MatchesReference()
    {
        using var embedder = new TimestepEmbedder(GenerationPathFixture.HiddenSize);
        var report = GenerationPathFixture.LoadPrefixed(embedder, "time_embedder.");
        Assert.Equal(["mlp.0.bias", "mlp.0.weight", "mlp.2.bias", "mlp.2.weight"],
            embedder.state_dict().Keys.Order(StringComparer.Ordinal));
        Assert.Empty(report.MissingKeys);
        using Tensor t = GenerationPathFixture.Read("fixture.embedder_t");
        using Tensor expected = GenerationPathFixture.Read("fixture.embedder_out");
        using Tensor actual = embedder.forward(t);
        ReferenceFixtures.AssertClose(expected, actual, ReferenceFixtures.Float32Tolerance, "timestep embedding");
    }

    [Fact]
    public void FrequencyEmbedding_OddDimension_AppendsAZeroColumn()
    {
        using Tensor t = tensor(new[] { 0.5f });
        using Tensor embedding = TimestepEmbedder.FrequencyEmbedding(t, dim: 7);
        Assert.Equal([1L, 7], embedding.shape);
        Assert.Equal(0f, embedding[0, 6].item<float>());
        Assert.Equal(MathF.Cos(0.5f), embedding[0, 0].item<float>(), 6);
        Assert.Equal(MathF.Sin(0.5f), embedding[0, 3].item<float>(), 6);
    }
}
