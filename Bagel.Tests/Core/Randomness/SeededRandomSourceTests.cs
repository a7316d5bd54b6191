using Bagel.Core.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Randomness;

public sealed class SeededRandomSourceTests
{
    private static (double, long, double) Scalars(IRandomSource source) =>
        (source.NextUniform(), source.NextInt(0, 1000), source.NextStandardNormal());

    [Fact]
    public void SameSeedAndPurposeGiveTheSameDraws()
    {
        using var a = SeededRandomSource.ForPurpose(42, RandomPurposes.Timesteps, rank: 1, worker: 2);
        using var b = SeededRandomSource.ForPurpose(42, RandomPurposes.Timesteps, rank: 1, worker: 2);
        Assert.Equal(Scalars(a), Scalars(b));
        using Tensor ta = a.NextStandardNormalTensor([3, 4], ScalarType.Float32, torch.CPU);
        using Tensor tb = b.NextStandardNormalTensor([3, 4], ScalarType.Float32, torch.CPU);
        Assert.True(ta.Equals(tb));
    }

    [Fact]
    public void DifferentPurposesGiveDifferentDraws()
    {
        using var a = SeededRandomSource.ForPurpose(42, RandomPurposes.FlowNoise);
        using var b = SeededRandomSource.ForPurpose(42, RandomPurposes.VaePosteriorNoise);
        Assert.NotEqual(Scalars(a), Scalars(b));
        using Tensor ta = a.NextStandardNormalTensor([16], ScalarType.Float32, torch.CPU);
        using Tensor tb = b.NextStandardNormalTensor([16], ScalarType.Float32, torch.CPU);
        Assert.False(ta.Equals(tb));
    }

    [Fact]
    public void SavedStateContinuesScalarAndTensorSequences()
    {
        using var source = SeededRandomSource.ForPurpose(5, RandomPurposes.FlowNoise);
        Scalars(source);
        source.NextStandardNormalTensor([8], ScalarType.Float32, torch.CPU).Dispose();
        RandomSourceState saved = source.GetState();
        var expectedScalars = Scalars(source);
        using Tensor expectedTensor = source.NextStandardNormalTensor([2, 3], ScalarType.Float32, torch.CPU);

        using var resumed = SeededRandomSource.FromState(saved);
        Assert.Equal(expectedScalars, Scalars(resumed));
        using Tensor actualTensor = resumed.NextStandardNormalTensor([2, 3], ScalarType.Float32, torch.CPU);
        Assert.True(expectedTensor.Equals(actualTensor));
        Assert.Equal(saved, saved with { }); // value equality over the byte payload
    }

    [Fact]
    public void StateSavedBeforeAnyTensorDrawRestartsTheTensorStream()
    {
        using var fresh = new SeededRandomSource(9);
        RandomSourceState initial = fresh.GetState();
        Assert.Null(initial.TorchGenerator);
        using Tensor first = fresh.NextStandardNormalTensor([4], ScalarType.Float32, torch.CPU);

        fresh.SetState(initial);
        using Tensor again = fresh.NextStandardNormalTensor([4], ScalarType.Float32, torch.CPU);
        Assert.True(first.Equals(again));
    }

    [Fact]
    public void TensorDrawsHonourDtypeAndRoundTheFloat32Draw()
    {
        using var a = new SeededRandomSource(3);
        using var b = new SeededRandomSource(3);
        using Tensor f32 = a.NextStandardNormalTensor([5], ScalarType.Float32, torch.CPU);
        using Tensor bf16 = b.NextStandardNormalTensor([5], ScalarType.BFloat16, torch.CPU);
        Assert.Equal(ScalarType.BFloat16, bf16.dtype);
        using Tensor rounded = f32.to(ScalarType.BFloat16);
        Assert.True(rounded.Equals(bf16));
    }

    [Fact]
    public void StateOfAnotherStreamIsRejected()
    {
        using var a = new SeededRandomSource(1);
        using var b = new SeededRandomSource(2);
        var ex = Assert.Throws<ArgumentException>(() => b.SetState(a.GetState()));
        Assert.Contains("stream seed 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TorchGeneratorStateOfTheWrongSizeIsRejectedBeforeLibtorchSeesIt()
    {
        using var source = new SeededRandomSource(4);
        source.NextStandardNormalTensor([2], ScalarType.Float32, torch.CPU).Dispose();
        RandomSourceState good = source.GetState();
        var ex = Assert.Throws<ArgumentException>(() => source.SetState(good with { TorchGenerator = [1, 2, 3] }));
        Assert.Contains("3 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Contains(good.TorchGenerator!.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), ex.Message, StringComparison.Ordinal);
    }
}
