using System.Text.Json;
using Bagel.Core.Randomness;

namespace Bagel.Tests.Core.Randomness;

public sealed class Xoshiro256StarStarTests
{
    private static JsonElement Vectors()
    {
        string path = Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "Randomness", "xoshiro_vectors.json");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement;
    }

    private static ulong[] Words(JsonElement element) => [.. element.EnumerateArray().Select(e => e.GetUInt64())];

    [Fact]
    public void RawStateMatchesThePublishedAlgorithm()
    {
        var rng = new Xoshiro256StarStar(new ScalarRngState(ScalarRngState.Xoshiro256StarStarAlgorithm, [1, 2, 3, 4]));
        ulong[] expected = Words(Vectors().GetProperty("state_1_2_3_4"));
        Assert.Equal(expected, Enumerable.Range(0, expected.Length).Select(_ => rng.NextUInt64()).ToArray());
    }

    [Fact]
    public void SeedingExpandsTheSeedWithSplitMix64()
    {
        JsonElement vectors = Vectors();
        Assert.Equal(Words(vectors.GetProperty("seed_0_state")), new Xoshiro256StarStar(0).GetState().Words);
        foreach ((ulong seed, string key) in new[] { (0UL, "seed_0_outputs"), (42UL, "seed_42_outputs") })
        {
            var rng = new Xoshiro256StarStar(seed);
            ulong[] expected = Words(vectors.GetProperty(key));
            Assert.Equal(expected, Enumerable.Range(0, expected.Length).Select(_ => rng.NextUInt64()).ToArray());
        }
    }

    [Fact]
    public void RestoredStateContinuesTheExactSequence()
    {
        var rng = new Xoshiro256StarStar(7);
        for (int i = 0; i < 10; i++) rng.NextUInt64();
        ScalarRngState saved = rng.GetState();
        double[] expected = [rng.NextDouble(), rng.NextStandardNormal(), rng.NextInt64(-5, 5), rng.NextDouble()];

        var resumed = new Xoshiro256StarStar(saved);
        double[] actual = [resumed.NextDouble(), resumed.NextStandardNormal(), resumed.NextInt64(-5, 5), resumed.NextDouble()];

        Assert.Equal(expected, actual);
    }

    [Fact]
    public void DrawsStayInTheirRanges()
    {
        var rng = new Xoshiro256StarStar(3);
        var seen = new HashSet<long>();
        for (int i = 0; i < 2000; i++)
        {
            double u = rng.NextDouble();
            Assert.InRange(u, 0.0, 0.9999999999999999);
            long k = rng.NextInt64(-2, 3);
            Assert.InRange(k, -2, 2);
            seen.Add(k);
            Assert.True(double.IsFinite(rng.NextStandardNormal()));
        }
        Assert.Equal(5, seen.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => rng.NextInt64(4, 4));
    }

    [Fact]
    public void NormalDrawsHaveUnitMoments()
    {
        var rng = new Xoshiro256StarStar(11);
        double[] draws = [.. Enumerable.Range(0, 20000).Select(_ => rng.NextStandardNormal())];
        double mean = draws.Average();
        double variance = draws.Select(d => (d - mean) * (d - mean)).Average();
        Assert.InRange(mean, -0.03, 0.03);
        Assert.InRange(variance, 0.95, 1.05);
    }

    [Fact]
    public void InvalidStatesAreRejected()
    {
        var rng = new Xoshiro256StarStar(1);
        Assert.Throws<ArgumentException>(() => rng.SetState(new ScalarRngState("pcg64", [1, 2, 3, 4])));
        Assert.Throws<ArgumentException>(() => rng.SetState(new ScalarRngState(ScalarRngState.Xoshiro256StarStarAlgorithm, [1, 2])));
        var zero = Assert.Throws<ArgumentException>(() => rng.SetState(new ScalarRngState(ScalarRngState.Xoshiro256StarStarAlgorithm, [0, 0, 0, 0])));
        Assert.Contains("all-zero", zero.Message, StringComparison.Ordinal);
    }
}
