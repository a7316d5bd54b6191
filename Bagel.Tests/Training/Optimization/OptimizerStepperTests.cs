using Bagel.Tests.Core.Randomness;
using Bagel.Core.Native;
using Bagel.Tests.Core.StateDicts;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Tests.Training.Optimization;

// Seeds or draws from torch's process-wide generator: runs alone, as the other global-RNG tests.
[Collection(nameof(TorchGlobalRandomTests))]
public sealed class OptimizerStepperTests
{
    public OptimizerStepperTests() => TorchRuntime.EnsureLoaded();

    private static Dictionary<string, torch.Tensor> Snapshot(torch.nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    [Fact]
    public void ANonFiniteStepLeavesWeightsAndEmaAloneButAdvancesTheSchedule()
    {
        using var scope = torch.NewDisposeScope();
        using var run = new TinyTrainingRun();
        run.Train(0, 3);
        Dictionary<string, torch.Tensor> model = Snapshot(run.Model), ema = Snapshot(run.Ema.Module);

        run.Train(3, 4, nanSteps: [3]);

        foreach ((string name, Parameter p) in run.Model.named_parameters()) Assert.True(model[name].Equals(p), name);
        foreach ((string name, Parameter p) in run.Ema.Module.named_parameters()) Assert.True(ema[name].Equals(p), name);
        Assert.Equal(4, run.Scheduler.NextStep);
        Assert.Equal(1, run.Guard.TotalSkipped);
        Assert.All(run.Model.parameters(), p => Assert.Equal(0f, p.grad!.abs().sum().item<float>()));
    }

    [Fact]
    public void AFiniteStepUpdatesWeightsAndEmaAndReportsThePreClipNormAndLr()
    {
        using var scope = torch.NewDisposeScope();
        using var run = new TinyTrainingRun();
        run.Train(0, 2); // warm-up of 2: step 0 used lr 0, step 1 lr/2
        Dictionary<string, torch.Tensor> model = Snapshot(run.Model), ema = Snapshot(run.Ema.Module);

        run.Train(2, 3);

        Assert.Contains(run.Model.named_parameters(), p => !model[p.name].Equals(p.parameter));
        Assert.Contains(run.Ema.Module.named_parameters(), p => !ema[p.name].Equals(p.parameter));
        Assert.Equal(0, run.Guard.TotalSkipped);
    }

    [Fact]
    public void TheFirstStepOfAWarmUpChangesNothingButOptimizerState()
    {
        using var scope = torch.NewDisposeScope();
        using var run = new TinyTrainingRun();
        Dictionary<string, torch.Tensor> model = Snapshot(run.Model);

        run.Train(0, 1);

        foreach ((string name, Parameter p) in run.Model.named_parameters()) Assert.True(model[name].Equals(p), name);
        Assert.All(run.Optimizer.state_dict().State.Cast<AdamW.State>(), s => Assert.Equal(1, s.step));
    }

    [Fact]
    public void NonFiniteStepsAreLogged()
    {
        using var scope = torch.NewDisposeScope();
        using var run = new TinyTrainingRun();
        var logger = new ListLogger();
        var stepper = new Bagel.Training.Optimization.OptimizerStepper(run.Optimizer, run.Scheduler, run.Ema, run.Guard, 1.0, logger);

        Bagel.Training.Optimization.OptimizerStepResult result = stepper.Step(0, double.NaN);

        Assert.True(result.Skipped);
        Assert.Contains(logger.Entries, e => e.Message.Contains("Step 0 skipped", StringComparison.Ordinal));
    }
}
