using Bagel.Tests.Core.Randomness;
using Bagel.Core.Native;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Optimization;
using Bagel.Training.Schedules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Training.Optimization;

// Seeds or draws from torch's process-wide generator: runs alone, as the other global-RNG tests.
[Collection(nameof(TorchGlobalRandomTests))]
public sealed class AdamWStateFileTests
{
    public AdamWStateFileTests() => TorchRuntime.EnsureLoaded();

    private static torch.nn.Module NewModel()
    {
        torch.manual_seed(11);
        return Sequential(("fc1", Linear(4, 8)), ("act", Tanh()), ("fc2", Linear(8, 3)));
    }

    private sealed class Run : IDisposable
    {
        public Run()
        {
            Model = NewModel();
            var parameters = Model.named_parameters().ToList();
            Optimizer = AdamWFactory.Create([
                new ParameterGroup("weights", [.. parameters.Where(p => p.name.EndsWith("weight", StringComparison.Ordinal)).Select(p => p.parameter)]),
                new ParameterGroup("biases", [.. parameters.Where(p => p.name.EndsWith("bias", StringComparison.Ordinal)).Select(p => p.parameter)], LearningRate: 5e-3),
            ], new AdamWOptions { LearningRate = 1e-2 });
            Scheduler = new LearningRateScheduler(Optimizer, new ConstantWithWarmupSchedule(2));
        }

        public torch.nn.Module Model { get; }
        public AdamW Optimizer { get; }
        public LearningRateScheduler Scheduler { get; }

        public void Train(int fromStep, int steps)
        {
            for (int step = fromStep; step < fromStep + steps; step++)
            {
                using var scope = torch.NewDisposeScope();
                var generator = new torch.Generator((ulong)(100 + step));
                torch.Tensor x = torch.randn([5, 4], generator: generator), y = torch.randn([5, 3], generator: generator);
                Optimizer.zero_grad();
                torch.Tensor loss = functional.mse_loss(((torch.nn.Module<torch.Tensor, torch.Tensor>)Model).forward(x), y);
                loss.backward();
                GradientClipping.ClipGradNorm(Model.parameters(), 1.0);
                Optimizer.step();
                Scheduler.Step();
            }
        }

        public void Dispose()
        {
            Optimizer.Dispose();
            Model.Dispose();
        }
    }

    [Fact]
    public void SaveRestoreContinueIsBitIdenticalToContinuingWithoutTheSave()
    {
        using var folder = new TempDirectory();
        using var straight = new Run();
        straight.Train(0, 6);

        using var first = new Run();
        first.Train(0, 3);
        string model = folder.File("model.pt"), optimizer = folder.File(AdamWStateFile.FileName), scheduler = folder.File(LearningRateScheduler.FileName);
        first.Model.save(model);
        AdamWStateFile.Save(first.Optimizer, optimizer, TestContext.Current.CancellationToken);
        first.Scheduler.Save(scheduler);

        using var resumed = new Run();
        resumed.Model.load(model);
        AdamWStateFile.Load(resumed.Optimizer, optimizer);
        resumed.Scheduler.Load(scheduler);
        resumed.Train(3, 3);

        foreach ((string name, Parameter parameter) in straight.Model.named_parameters())
            Assert.True(parameter.Equals(resumed.Model.named_parameters().Single(p => p.name == name).parameter), name);
        var expected = straight.Optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        var actual = resumed.Optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(6, actual[i].step);
            Assert.True(expected[i].exp_avg.Equals(actual[i].exp_avg));
            Assert.True(expected[i].exp_avg_sq.Equals(actual[i].exp_avg_sq));
        }
    }

    [Fact]
    public void AnOptimizerWithOtherGroupsIsRefusedNamingTheFile()
    {
        using var folder = new TempDirectory();
        using var run = new Run();
        run.Train(0, 1);
        string path = folder.File(AdamWStateFile.FileName);
        AdamWStateFile.Save(run.Optimizer, path, TestContext.Current.CancellationToken);
        using AdamW single = AdamWFactory.Create(NewModel());

        var exception = Assert.Throws<CheckpointException>(() => AdamWStateFile.Load(single, path));

        Assert.Contains(path, exception.Message, StringComparison.Ordinal);
        Assert.Contains("2 parameter groups", exception.Message, StringComparison.Ordinal);
    }
}
