using Bagel.Core.Randomness;

namespace Bagel.Tests.Core.Randomness;

public sealed class SeedDerivationTests
{
    [Fact]
    public void SameInputsGiveTheSameSeed()
    {
        Assert.Equal(SeedDerivation.Derive(42, RandomPurposes.Timesteps, 1, 2), SeedDerivation.Derive(42, RandomPurposes.Timesteps, 1, 2));
    }

    [Fact]
    public void PurposesRanksWorkersAndSeedsGiveDistinctStreams()
    {
        ulong[] seeds =
        [
            SeedDerivation.Derive(42, RandomPurposes.Timesteps),
            SeedDerivation.Derive(42, RandomPurposes.ConditionDropout),
            SeedDerivation.Derive(42, RandomPurposes.Timesteps, rank: 1),
            SeedDerivation.Derive(42, RandomPurposes.Timesteps, worker: 1),
            SeedDerivation.Derive(43, RandomPurposes.Timesteps),
        ];
        Assert.Equal(5, seeds.Distinct().Count());

        var first = new Xoshiro256StarStar(seeds[0]);
        var second = new Xoshiro256StarStar(seeds[1]);
        Assert.NotEqual(first.NextUInt64(), second.NextUInt64());
    }

    [Fact]
    public void StableHashIsFnv1a64()
    {
        // FNV-1a 64 published check values: "" -> offset basis, "a" -> 0xaf63dc4c8601ec8c.
        Assert.Equal(0xCBF29CE484222325UL, SeedDerivation.StableHash(""));
        Assert.Equal(0xAF63DC4C8601EC8CUL, SeedDerivation.StableHash("a"));
    }

    [Fact]
    public void ReferenceRankSeedIsGlobalSeedTimesWorldSizePlusRank()
    {
        Assert.Equal(4396L * 8 + 3, SeedDerivation.ReferenceRankSeed(4396, 8, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => SeedDerivation.ReferenceRankSeed(4396, 2, 2));
    }
}
