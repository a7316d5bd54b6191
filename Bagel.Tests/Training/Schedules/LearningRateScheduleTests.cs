using Bagel.Training.Options;
using Bagel.Training.Schedules;

namespace Bagel.Tests.Training.Schedules;

public sealed class LearningRateScheduleTests
{
    [Theory]
    [InlineData(0, 0.0)]
    [InlineData(1, 0.25)]
    [InlineData(3, 0.75)]
    [InlineData(4, 1.0)]
    [InlineData(1000, 1.0)]
    public void ConstantWarmsUpLinearlyFromZero(long step, double expected) =>
        Assert.Equal(expected, new ConstantWithWarmupSchedule(4).Multiplier(step));

    [Fact]
    public void WithoutWarmupTheFirstUpdateUsesTheFullRate()
    {
        Assert.Equal(1.0, new ConstantWithWarmupSchedule(0).Multiplier(0));
        Assert.Equal(1.0, new CosineWithWarmupSchedule(0, 10, 1e-4, 1e-6).Multiplier(0));
    }

    [Fact]
    public void CosineMatchesHandComputedValuesAtItsBoundaries()
    {
        // W = 2, total = 10, rho = 1e-6 / 1e-4 = 0.01; p = (k - 2) / 8.
        var schedule = new CosineWithWarmupSchedule(2, 10, 1e-4, 1e-6);

        Assert.Equal(0.0, schedule.Multiplier(0));
        Assert.Equal(0.5, schedule.Multiplier(1));
        Assert.Equal(1.0, schedule.Multiplier(2), 15);
        Assert.Equal(0.5 * 0.99 + 0.01, schedule.Multiplier(6), 15); // p = 0.5, c = 0.5
        Assert.Equal(0.01, schedule.Multiplier(10), 15);             // p = 1, c = 0
        Assert.Equal((0.5 * (1 + Math.Cos(Math.PI * 0.125))) * 0.99 + 0.01, schedule.Multiplier(3), 15);
    }

    [Fact]
    public void OptionsSelectTheSchedule()
    {
        Assert.IsType<ConstantWithWarmupSchedule>(LearningRateSchedules.FromOptions(new TrainingOptions()));
        var cosine = Assert.IsType<CosineWithWarmupSchedule>(LearningRateSchedules.FromOptions(new TrainingOptions { LrScheduler = "cosine" }));
        Assert.Equal(1e-7 / 1e-4, cosine.MinLrRatio);
        Assert.Throws<InvalidTrainingOptionsException>(() => LearningRateSchedules.FromOptions(new TrainingOptions { LrScheduler = "step" }));
    }
}
