using Bagel.Core.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Randomness;

[CollectionDefinition(nameof(TorchGlobalRandomTests), DisableParallelization = true)]
public sealed class TorchGlobalRandomCollection;

// torch's global generator is process-wide: these tests run alone so no other test draws from it meanwhile.
[Collection(nameof(TorchGlobalRandomTests))]
public sealed class TorchGlobalRandomTests
{
    [Fact]
    public void SavedGlobalStateContinuesTheSequence()
    {
        TorchGlobalRandom.Seed(1234);
        torch.randn(3).Dispose();
        byte[] saved = TorchGlobalRandom.GetState();
        using Tensor expected = torch.randn(6);

        TorchGlobalRandom.SetState(saved);
        using Tensor actual = torch.randn(6);

        Assert.True(expected.Equals(actual));
    }

    [Fact]
    public void SeedingTwiceGivesTheSameDraws()
    {
        TorchGlobalRandom.Seed(77);
        using Tensor first = torch.rand(4);
        TorchGlobalRandom.Seed(77);
        using Tensor second = torch.rand(4);
        Assert.True(first.Equals(second));
    }

    [Fact]
    public void CorruptStateIsRejectedWithItsSize()
    {
        var ex = Assert.Throws<ArgumentException>(() => TorchGlobalRandom.SetState([1, 2, 3]));
        Assert.Contains("3 bytes", ex.Message, StringComparison.Ordinal);
    }
}
