using Bagel.Training.Optimization;

namespace Bagel.Tests.Training.Optimization;

public sealed class NonFiniteStepGuardTests
{
    [Fact]
    public void NonFiniteStepsAreSkippedAndCountedAndAFiniteStepResetsTheRun()
    {
        var guard = new NonFiniteStepGuard(maxConsecutive: 3);

        Assert.True(guard.ShouldSkip(0, double.NaN, 1.0));
        Assert.True(guard.ShouldSkip(1, 0.5, double.PositiveInfinity));
        Assert.False(guard.ShouldSkip(2, 0.5, 1.0));

        Assert.Equal(2, guard.TotalSkipped);
        Assert.Equal(0, guard.ConsecutiveSkipped);
    }

    [Fact]
    public void TooManyInARowStopTheRunWithAClearError()
    {
        var guard = new NonFiniteStepGuard(maxConsecutive: 2);
        guard.ShouldSkip(4, double.NaN, double.NaN);

        var exception = Assert.Throws<NonFiniteLossException>(() => guard.ShouldSkip(5, double.NaN, 2.0));

        Assert.Contains("Step 5", exception.Message, StringComparison.Ordinal);
        Assert.Contains("2 steps in a row", exception.Message, StringComparison.Ordinal);
    }
}
