using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Data.Diagnostics;
using Bagel.Data.Packing;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Data.Packing;

/// <summary>
/// The reference draws the group choice and the conditioning dropout from one Python <c>random</c> stream: the
/// constructor that takes one uniform source reproduces that order exactly (the same draws, in the same order, as the
/// three-source constructor given that source twice), and the three-source constructor still keeps the streams apart.
/// </summary>
public sealed class PackingLoopRandomSourceTests
{
    /// <summary>Wraps a source and logs which kind of draw each call was.</summary>
    private sealed class Logged(IRandomSource inner, List<string> log, string name) : IRandomSource
    {
        public double NextUniform()
        {
            log.Add(name + ":uniform");
            return inner.NextUniform();
        }

        public long NextInt(long minInclusive, long maxExclusive) => inner.NextInt(minInclusive, maxExclusive);

        public double NextStandardNormal()
        {
            log.Add(name + ":normal");
            return inner.NextStandardNormal();
        }

        public Tensor NextStandardNormalTensor(ReadOnlySpan<long> shape, ScalarType dtype, Device device) =>
            inner.NextStandardNormalTensor(shape, dtype, device);
    }

    private static readonly PackingOptions Options = new()
    {
        ExpectedNumTokens = 40, MaxNumTokens = 80, MaxNumTokensPerSample = 80, PreferBufferBefore = 40,
        TextCondDropoutProb = 0.5, VaeCondDropoutProb = 0.5, VitCondDropoutProb = 0.5,
    };

    private static PackingGroup[] Groups()
    {
        long t2i = 0, text = 0;
        return
        [
            new("t2i", 1.0, false, _ => ValueTask.FromResult(SequencePackerTests.T2I([1, 2, 3], 32, 32, t2i++))),
            new("text", 1.0, false, _ => ValueTask.FromResult(new PackableSample(SequencePackerTests.Index("text", text++), "text",
                [PlanItem.Text(false, true)], [[4, 5, 6, 7]], []))),
        ];
    }

    private static async Task<(long[] TextIds, long[] Positions)> FirstBatchAsync(PackingLoop loop)
    {
        using (loop)
        using (PackedBatch batch = await loop.NextBatchAsync(TestContext.Current.CancellationToken))
            return (batch.PackedTextIds.data<long>().ToArray(), batch.PackedPositionIds.data<long>().ToArray());
    }

    [Fact]
    public async Task OneUniformSourceGivesTheSameDrawsInTheSameOrderAsTheSameSourcePassedTwice()
    {
        var oneLog = new List<string>();
        var one = new Logged(new SeededRandomSource(5), oneLog, "python");
        var oneNormal = new Logged(new SeededRandomSource(6), oneLog, "numpy");
        var single = await FirstBatchAsync(new PackingLoop(Groups(), Options, new SequencePacker(Options, SequencePackerTests.Tokens), one, oneNormal, new DataSkipCounters()));

        var twiceLog = new List<string>();
        var shared = new Logged(new SeededRandomSource(5), twiceLog, "python");
        var twiceNormal = new Logged(new SeededRandomSource(6), twiceLog, "numpy");
        var twice = await FirstBatchAsync(new PackingLoop(Groups(), Options, new SequencePacker(Options, SequencePackerTests.Tokens), shared, shared, twiceNormal, new DataSkipCounters()));

        Assert.Equal(twice.TextIds, single.TextIds);
        Assert.Equal(twice.Positions, single.Positions);
        Assert.Equal(twiceLog, oneLog);
        // Group choices and dropout draws interleave on the one stream, as the reference's random.random() calls do.
        Assert.True(oneLog.Count(d => d == "python:uniform") > 2);
        Assert.Contains("numpy:normal", oneLog);
    }

    [Fact]
    public async Task TheThreeSourceConstructorStillKeepsGroupSamplingAndDropoutApart()
    {
        var log = new List<string>();
        var groups = new Logged(new SeededRandomSource(5), log, "groups");
        var dropout = new Logged(new SeededRandomSource(7), log, "dropout");
        var timesteps = new Logged(new SeededRandomSource(6), log, "timesteps");
        await FirstBatchAsync(new PackingLoop(Groups(), Options, new SequencePacker(Options, SequencePackerTests.Tokens), groups, dropout, timesteps, new DataSkipCounters()));

        Assert.Contains("groups:uniform", log);
        Assert.Contains("dropout:uniform", log);
        Assert.DoesNotContain("groups:normal", log);
        Assert.DoesNotContain("dropout:normal", log);
        Assert.All(log.Where(d => d.StartsWith("timesteps", StringComparison.Ordinal)), d => Assert.Equal("timesteps:normal", d));
    }
}
