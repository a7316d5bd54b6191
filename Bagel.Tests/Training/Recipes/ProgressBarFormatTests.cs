using Bagel.Training.Recipes;

namespace Bagel.Tests.Training.Recipes;

public sealed class ProgressBarFormatTests
{
    [Fact]
    public void TheEtaUsesOnlyTheStepsOfThisProcess()
    {
        // Resumed at step 20, five steps done in 10 s: 2 s per step, 75 steps left.
        Assert.Equal(TimeSpan.FromSeconds(150), ProgressBarFormat.EstimateRemaining(completed: 25, total: 100, stepsThisRun: 5, TimeSpan.FromSeconds(10)));
        Assert.Null(ProgressBarFormat.EstimateRemaining(20, 100, 0, TimeSpan.FromSeconds(3)));
        Assert.Equal(TimeSpan.Zero, ProgressBarFormat.EstimateRemaining(100, 100, 100, TimeSpan.FromSeconds(3)));
    }

    [Fact]
    public void TheLineShowsBarCountPercentSpeedAndEta()
    {
        Assert.Equal("[#####-----]  50/100 steps  50.0%  2.00 steps/s  ETA 00:00:25",
            ProgressBarFormat.Format(50, 100, 50, TimeSpan.FromSeconds(25), barWidth: 10));
        Assert.Equal("[----------]   0/100 steps   0.0%  ETA --:--:--", ProgressBarFormat.Format(0, 100, 0, TimeSpan.Zero, barWidth: 10));
        Assert.Equal("[##########] 3/3 steps 100.0%  1.00 steps/s  ETA 00:00:00", ProgressBarFormat.Format(3, 3, 3, TimeSpan.FromSeconds(3), barWidth: 10));
    }

    [Fact]
    public void LongDurationsShowDays() =>
        Assert.Equal("1d 02:03:04", ProgressBarFormat.Duration(new TimeSpan(1, 2, 3, 4)));
}
