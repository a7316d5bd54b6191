using Bagel.Training.Metrics;

namespace Bagel.Tests.Training.Metrics;

public sealed class ThroughputWindowTests
{
    // A tiny Qwen2-style config: h=8, i=16, 2 layers, 4 heads (head_dim 2), 2 kv heads, vocab 10.
    private static readonly Qwen2FlopConfig Tiny = new(HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 2, NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 10);

    [Fact]
    public void DenseParametersFollowTheReferencesCount()
    {
        // per layer: MLP 3*8*16 = 384; attention 8*(q 8 + k 4 + v 4 + o 8) = 192; 2 layers = 1152; + 2*10*8 = 160.
        Assert.Equal(1312.0, Tiny.DenseParameters);
        Assert.Equal(6 * 1312.0, Tiny.DenseTokenFactor);
        Assert.Equal(12.0 * 2 * 4 * 2, Tiny.AttentionFactor);
    }

    [Fact]
    public void MfuIsEstimatedFlopsOverElapsedOverPeak()
    {
        var window = new ThroughputWindow(Tiny, peakTflopsPerDevice: 1e-9);
        window.Add(10, [6, 4]);
        window.Add(5, [5]);

        ThroughputReport report = window.Report(TimeSpan.FromSeconds(2), logEvery: 2);

        double flops = 6 * 1312.0 * 15 + 12.0 * 2 * 4 * 2 * (36 + 16 + 25);
        Assert.Equal(1.0, report.StepsPerSec);
        Assert.Equal(7.5, report.TokensPerSec);
        Assert.Equal(7.5, report.TokensPerStep);
        Assert.Equal(flops / 2 / 1e12, report.ActualTflops, 1e-24);
        Assert.Equal(flops / 2 / 1e12 / 1e-9, report.Mfu, 1e-12);
        window.Reset();
        Assert.Equal((0.0, 0.0), (window.Tokens, window.SquaredSampleLengths));
    }

    [Fact]
    public void AnUnknownPeakGivesMfuZero()
    {
        var window = new ThroughputWindow(Tiny, peakTflopsPerDevice: 0);
        window.Add(100, [100]);

        Assert.Equal(0.0, window.Report(TimeSpan.FromSeconds(1), 1).Mfu);
    }

    [Theory]
    [InlineData("NVIDIA H100 80GB HBM3", 989.0)]
    [InlineData("NVIDIA H200", 989.0)]
    [InlineData("NVIDIA A100-SXM4-40GB", 312.0)]
    [InlineData("NVIDIA L40S", 181.05)]
    [InlineData("NVIDIA H20", 148.0)]
    [InlineData("AMD Instinct MI300X", 1336.0)]
    [InlineData("NVIDIA GeForce RTX 3070 Ti", 21.75)]
    [InlineData("cpu", 0.0)]
    [InlineData(null, 0.0)]
    public void PeakFlopsComeFromTheReferencesTable(string? name, double expected) =>
        Assert.Equal(expected, PeakDeviceFlops.DetectTflops(name));
}
