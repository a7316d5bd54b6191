using Bagel.Core.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Randomness;

public sealed class RandomStreamsTests
{
    [Fact]
    public void EachPurposeHasItsOwnStableStream()
    {
        using var streams = new RandomStreams(42, rank: 1, worker: 2);
        Assert.Same(streams.For(RandomPurposes.Timesteps), streams.For(RandomPurposes.Timesteps));
        using var direct = SeededRandomSource.ForPurpose(42, RandomPurposes.Timesteps, 1, 2);
        Assert.Equal(direct.NextStandardNormal(), streams.For(RandomPurposes.Timesteps).NextStandardNormal());
        Assert.NotEqual(streams.For(RandomPurposes.GroupSampling).NextUniform(), streams.For(RandomPurposes.ConditionDropout).NextUniform());
    }

    [Fact]
    public void SavedStatesResumeEveryStream()
    {
        using var streams = new RandomStreams(7);
        streams.For(RandomPurposes.GroupSampling).NextUniform();
        streams.For(RandomPurposes.FlowNoise).NextStandardNormalTensor([4], ScalarType.Float32, torch.CPU).Dispose();
        IReadOnlyDictionary<string, RandomSourceState> saved = streams.GetStates();
        double expectedUniform = streams.For(RandomPurposes.GroupSampling).NextUniform();
        using Tensor expectedNoise = streams.For(RandomPurposes.FlowNoise).NextStandardNormalTensor([4], ScalarType.Float32, torch.CPU);

        using var resumed = new RandomStreams(7);
        resumed.SetStates(saved);

        Assert.Equal(expectedUniform, resumed.For(RandomPurposes.GroupSampling).NextUniform());
        using Tensor noise = resumed.For(RandomPurposes.FlowNoise).NextStandardNormalTensor([4], ScalarType.Float32, torch.CPU);
        Assert.True(expectedNoise.Equals(noise));
    }

    [Fact]
    public void StatesOfAnotherRankAreRejected()
    {
        using var rank0 = new RandomStreams(7, rank: 0);
        rank0.For(RandomPurposes.Timesteps).NextUniform();
        using var rank1 = new RandomStreams(7, rank: 1);
        var ex = Assert.Throws<ArgumentException>(() => rank1.SetStates(rank0.GetStates()));
        Assert.Contains("rank 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains(RandomPurposes.Timesteps, ex.Message, StringComparison.Ordinal);
    }
}
