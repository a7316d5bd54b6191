using Bagel.Core.Native;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Optimization;
using Bagel.Training.Schedules;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Tests.Training.Schedules;

public sealed class LearningRateSchedulerTests
{
    public LearningRateSchedulerTests() => TorchRuntime.EnsureLoaded();

    private static AdamW NewOptimizer(double lr = 1e-3)
    {
        var first = new Parameter(torch.zeros(2));
        var second = new Parameter(torch.zeros(3));
        return AdamWFactory.Create([new ParameterGroup("a", [first]), new ParameterGroup("b", [second], LearningRate: lr * 2)],
            new AdamWOptions { LearningRate = lr });
    }

    [Fact]
    public void TheFirstUpdateUsesLearningRateZeroAndEachStepAdvancesTheMultiplier()
    {
        using AdamW optimizer = NewOptimizer();
        var scheduler = new LearningRateScheduler(optimizer, new ConstantWithWarmupSchedule(4));

        Assert.Equal([0.0, 0.0], optimizer.ParamGroups.Select(g => g.LearningRate));
        scheduler.Step();
        scheduler.Step();
        scheduler.Step();

        Assert.Equal(3, scheduler.NextStep);
        Assert.Equal([1e-3 * 0.75, 2e-3 * 0.75], optimizer.ParamGroups.Select(g => g.LearningRate));
        Assert.Equal(1e-3 * 0.75, scheduler.CurrentLearningRate);
    }

    [Fact]
    public void SavedStateRestoresTheStepAndBaseRates()
    {
        using var folder = new TempDirectory();
        using AdamW saved = NewOptimizer();
        var original = new LearningRateScheduler(saved, new CosineWithWarmupSchedule(2, 10, 1e-3, 1e-5));
        for (int i = 0; i < 5; i++) original.Step();
        string path = folder.File(LearningRateScheduler.FileName);
        original.Save(path);

        using AdamW restored = NewOptimizer(lr: 5.0); // different base rates: the saved ones win.
        var resumed = new LearningRateScheduler(restored, new CosineWithWarmupSchedule(2, 10, 1e-3, 1e-5));
        resumed.Load(path);

        Assert.Equal(5, resumed.NextStep);
        Assert.Equal(saved.ParamGroups.Select(g => g.LearningRate), restored.ParamGroups.Select(g => g.LearningRate));
        original.Step();
        resumed.Step();
        Assert.Equal(saved.ParamGroups.Select(g => g.LearningRate), restored.ParamGroups.Select(g => g.LearningRate));
    }

    [Fact]
    public void StateOfAnotherScheduleIsRefusedNamingTheFile()
    {
        using var folder = new TempDirectory();
        using AdamW optimizer = NewOptimizer();
        string path = folder.File(LearningRateScheduler.FileName);
        new LearningRateScheduler(optimizer, new ConstantWithWarmupSchedule(2)).Save(path);

        var cosine = new LearningRateScheduler(optimizer, new CosineWithWarmupSchedule(2, 10, 1e-3, 0));
        var exception = Assert.Throws<SchedulerStateException>(() => cosine.Load(path));

        Assert.Contains(path, exception.Message, StringComparison.Ordinal);
        Assert.Contains("'constant'", exception.Message, StringComparison.Ordinal);
    }
}
