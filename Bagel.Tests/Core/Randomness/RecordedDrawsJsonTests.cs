using Bagel.Core.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Randomness;

public sealed class RecordedDrawsJsonTests
{
    [Fact]
    public void ParsesEveryKindInOrder()
    {
        using Tensor noise = torch.ones(2);
        IReadOnlyList<RecordedDraw> draws = RecordedDrawsJson.Parse(
            """[{"kind": "uniform", "value": 0.5}, {"kind": "integer", "value": 3}, {"kind": "normal", "value": -0.25}, {"kind": "tensor", "tensor": 0}]""",
            [noise]);

        Assert.Equal([RandomDrawKind.Uniform, RandomDrawKind.Integer, RandomDrawKind.StandardNormal, RandomDrawKind.StandardNormalTensor], draws.Select(d => d.Kind));
        var replay = new ReplayRandomSource(draws);
        Assert.Equal(0.5, replay.NextUniform());
        Assert.Equal(3, replay.NextInt(0, 4));
        Assert.Equal(-0.25, replay.NextStandardNormal());
        Assert.Same(noise, draws[3].Tensor);
    }

    [Theory]
    [InlineData("""[{"kind": "gauss", "value": 1}]""", "unknown kind 'gauss'")]
    [InlineData("""[{"kind": "uniform"}]""", "entry 0 (uniform)")]
    [InlineData("""[{"kind": "uniform", "value": 0.1}, {"kind": "tensor", "tensor": 2}]""", "entry 1: tensor index 2")]
    [InlineData("""{"kind": "uniform"}""", "root is an array")]
    public void MalformedEntriesNameTheSourceAndEntry(string json, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => RecordedDrawsJson.Parse(json, source: "fixtures/draws.json"));
        Assert.Contains("fixtures/draws.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }
}
