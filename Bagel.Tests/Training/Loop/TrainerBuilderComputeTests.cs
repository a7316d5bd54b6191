using Bagel.Core.Devices;
using Bagel.Training.Loop;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Bagel.Training.Schedules;
using TorchSharp;

namespace Bagel.Tests.Training.Loop;

/// <summary>The builder's compute, schedule and parameter-group choices take effect in the run.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class TrainerBuilderComputeTests
{
    private sealed class HalfSchedule : ILearningRateSchedule
    {
        public string Name => "half";

        public double Multiplier(long step) => 0.5 / (step + 1);
    }

    [Fact]
    public async Task UseCpuThreadsHoldsTheCountOnEveryStepAndLeavesTheBuildingThreadAsItWas()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 3);
        var data = await fixture.PipelineAsync();
        int before = torch.get_num_threads();
        int wanted = before == 1 ? 2 : 1;
        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(data)
            .UseOptions(fixture.Configuration("ckpt", totalSteps: 3)).UseCpuThreads(wanted).Build();
        Assert.Equal(before, torch.get_num_threads()); // the count is the run's, not the building thread's
        await trainer.RunAsync(TestContext.Current.CancellationToken);
        Assert.Equal(3, model.ForwardThreads.Count);
        Assert.All(model.ForwardThreads, threads => Assert.Equal(wanted, threads));
    }

    [Fact]
    public async Task UseCompute_ReportsAReducedPrecisionDTypeAndBadThreadCountsWithTheOtherFailures()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 3);
        var pipeline = await fixture.PipelineAsync();
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps: 1);
        configuration.Training.Lr = -1;
        var error = Assert.Throws<InvalidTrainingOptionsException>(() => new TrainerBuilder().UseModel(model).UseData(pipeline)
            .UseOptions(configuration).UseCompute(new ComputeOptions { DType = "fp16", InteropThreads = 0 }).Build());
        string all = string.Join("\n", error.Failures);
        Assert.Contains("'lr'", all, StringComparison.Ordinal);
        Assert.Contains("InteropThreads", all, StringComparison.Ordinal);
        Assert.Equal(2, error.Failures.Count); // the dtype is judged once the thread counts are valid

        var bf16 = Assert.Throws<InvalidTrainingOptionsException>(() => new TrainerBuilder().UseModel(model).UseData(pipeline)
            .UseOptions(fixture.Configuration("ckpt", totalSteps: 1)).UseCompute(new ComputeOptions { DType = "fp16" }).Build());
        Assert.Contains("does not train", Assert.Single(bf16.Failures), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UseCompute_ACudaDeviceWithoutCudaIsAnOptionFailure()
    {
        Assert.SkipWhen(torch.cuda.is_available(), "This machine has CUDA; the failure path needs a machine without it.");
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 3);
        var pipeline = await fixture.PipelineAsync();
        var error = Assert.Throws<InvalidTrainingOptionsException>(() => new TrainerBuilder().UseModel(model).UseData(pipeline)
            .UseOptions(fixture.Configuration("ckpt", totalSteps: 1)).UseCompute(new ComputeOptions { Device = "cuda" }).Build());
        Assert.Contains("cuda", Assert.Single(error.Failures), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task UseLearningRateScheduleReplacesTheConfiguredSchedule()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 4);
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps: 3);
        var steps = new List<TrainingStepReport>();
        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync())
            .UseOptions(configuration).UseLearningRateSchedule(new HalfSchedule()).OnStep(steps.Add).Build();
        await trainer.RunAsync(TestContext.Current.CancellationToken);
        Assert.Equal([0, 1, 2], steps.Select(s => s.Step));
        foreach (TrainingStepReport step in steps)
            Assert.Equal(configuration.Training.Lr * 0.5 / (step.Step + 1), step.LearningRate, 12);
    }

    [Fact]
    public async Task UseParameterGroupsGivesEachGroupItsOwnLearningRate()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 5);
        var parameters = model.Module.named_parameters().ToList();
        Assert.True(parameters.Count >= 2);
        string frozenName = parameters[0].name;
        torch.Tensor before = parameters[0].parameter.detach().clone();
        torch.Tensor otherBefore = parameters[1].parameter.detach().clone();
        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync())
            .UseOptions(fixture.Configuration("ckpt", totalSteps: 2))
            .UseParameterGroups(m => [
                new ParameterGroup("still", [.. m.named_parameters().Where(p => p.name == frozenName).Select(p => p.parameter)], LearningRate: 0),
                new ParameterGroup("rest", [.. m.named_parameters().Where(p => p.name != frozenName).Select(p => p.parameter)]),
            ])
            .Build();
        Assert.Equal(2, trainer.Optimizer.ParamGroups.Count());
        await trainer.RunAsync(TestContext.Current.CancellationToken);
        Assert.True(before.allclose(parameters[0].parameter.detach(), rtol: 0, atol: 0), $"{frozenName} moved with lr 0");
        Assert.False(otherBefore.allclose(parameters[1].parameter.detach(), rtol: 0, atol: 0), $"{parameters[1].name} did not train");
    }
}
