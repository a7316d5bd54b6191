using Bagel.Core.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Randomness;

public sealed class ReplayRandomSourceTests
{
    [Fact]
    public void ReturnsRecordedDrawsInOrder()
    {
        using Tensor noise = torch.arange(6, ScalarType.Float32).reshape(2, 3);
        var replay = new ReplayRandomSource(
        [
            RecordedDraw.Uniform(0.25), RecordedDraw.Integer(3), RecordedDraw.StandardNormal(-1.5), RecordedDraw.FromTensor(noise),
        ]);

        Assert.Equal(0.25, replay.NextUniform());
        Assert.Equal(3, replay.NextInt(0, 4));
        Assert.Equal(-1.5, replay.NextStandardNormal());
        using Tensor drawn = replay.NextStandardNormalTensor([2, 3], ScalarType.BFloat16, torch.CPU);
        Assert.Equal(ScalarType.BFloat16, drawn.dtype);
        using Tensor expected = noise.to(ScalarType.BFloat16);
        Assert.True(drawn.Equals(expected));
        Assert.Equal(0, replay.Remaining);
        replay.EnsureFullyConsumed();
    }

    [Fact]
    public void ReturnedTensorIsACopyTheCallerOwns()
    {
        using Tensor noise = torch.zeros(2);
        var replay = new ReplayRandomSource([RecordedDraw.FromTensor(noise)]);
        Tensor drawn = replay.NextStandardNormalTensor([2], ScalarType.Float32, torch.CPU);
        drawn.add_(1).Dispose();
        drawn.Dispose();
        Assert.Equal(0f, noise.sum().item<float>());
    }

    [Fact]
    public void DivergentKindNamesIndexRecordedAndRequested()
    {
        var replay = new ReplayRandomSource([RecordedDraw.Uniform(0.5), RecordedDraw.StandardNormal(0.1)]);
        replay.NextUniform();

        var ex = Assert.Throws<RandomReplayException>(() => replay.NextUniform());

        Assert.Equal(1, ex.DrawIndex);
        Assert.Equal(RandomDrawKind.Uniform, ex.Requested);
        Assert.Equal(RandomDrawKind.StandardNormal, ex.Recorded);
        Assert.Contains("#1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("StandardNormal 0.1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("(Uniform)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ExhaustedRecordingNamesTheRequestedDraw()
    {
        var replay = new ReplayRandomSource([RecordedDraw.Integer(0)]);
        replay.NextInt(0, 2);

        var ex = Assert.Throws<RandomReplayException>(() => replay.NextStandardNormal());

        Assert.Equal(1, ex.DrawIndex);
        Assert.Null(ex.Recorded);
        Assert.Equal(RandomDrawKind.StandardNormal, ex.Requested);
        Assert.Contains("exhausted", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void IntegerOutsideTheRequestedRangeIsADivergence()
    {
        var replay = new ReplayRandomSource([RecordedDraw.Integer(5)]);
        var ex = Assert.Throws<RandomReplayException>(() => replay.NextInt(0, 3));
        Assert.Equal(0, ex.DrawIndex);
        Assert.Contains("[0, 3)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TensorOfAnotherShapeIsADivergence()
    {
        using Tensor noise = torch.zeros(2, 3);
        var replay = new ReplayRandomSource([RecordedDraw.FromTensor(noise)]);
        var ex = Assert.Throws<RandomReplayException>(() => replay.NextStandardNormalTensor([3, 2], ScalarType.Float32, torch.CPU));
        Assert.Contains("[2, 3]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[3, 2]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnconsumedDrawsAreReported()
    {
        var replay = new ReplayRandomSource([RecordedDraw.Uniform(0.1), RecordedDraw.Uniform(0.2)]);
        replay.NextUniform();
        var ex = Assert.Throws<RandomReplayException>(replay.EnsureFullyConsumed);
        Assert.Contains("1 of 2", ex.Message, StringComparison.Ordinal);
    }
}
