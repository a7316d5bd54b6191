using Bagel.Tests.Core.Randomness;
using Bagel.Core.DataStatus;
using Bagel.Core.Native;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Options;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Tests.Training.Checkpoints;

// Seeds or draws from torch's process-wide generator: runs alone, as the other global-RNG tests.
[Collection(nameof(TorchGlobalRandomTests))]
public sealed class TrainingCheckpointerTests : IDisposable
{
    private readonly TempDirectory _root = new();

    public TrainingCheckpointerTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _root.Dispose();

    private string Dir => Path.Combine(_root.Path, "checkpoints");

    private static void AssertSameTensors(IEnumerable<(string Name, Parameter P)> expected, torch.nn.Module actual)
    {
        Dictionary<string, Parameter> byName = actual.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach ((string name, Parameter parameter) in expected) Assert.True(parameter.Equals(byName[name]), name);
    }

    [Fact]
    public void TenStepsStraightEqualFiveStepsSaveResumeFiveMoreBitForBit()
    {
        using var straight = new TinyTrainingRun();
        straight.Train(0, 10, nanSteps: [7]);

        using (var first = new TinyTrainingRun())
        {
            first.Train(0, 5);
            var status = new DataStatusDocument { WorldSize = 1, NumWorkers = 1, Ranks = [new RankDataStatus { Rank = 0 }] };
            new TrainingCheckpointer(new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir }), first.Components)
                .Save(new TrainProgress(5, TokensSeen: 30, SamplesSeen: 5), status, TestContext.Current.CancellationToken);
            first.Train(5, 6); // work after the save that the resumed run must not see
        }

        using var resumed = new TinyTrainingRun(initSeed: 99);
        ResumePlan plan = ResumePlanner.Plan(new TrainingOptions { CheckpointDir = Dir, AutoResume = true });
        RestoreResult result = new TrainingCheckpointer(new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir }), resumed.Components)
            .Restore(plan, TestContext.Current.CancellationToken);
        Assert.Equal(5, result.StartStep);
        Assert.Equal(5, result.DataStatus?.Step);
        Assert.Equal(30, result.State?.TokensSeen);
        resumed.Train(result.StartStep, 10, nanSteps: [7]);

        Assert.Equal(straight.Losses.Skip(5).Select(BitConverter.DoubleToInt64Bits), resumed.Losses.Select(BitConverter.DoubleToInt64Bits));
        AssertSameTensors(straight.Model.named_parameters(), resumed.Model);
        AssertSameTensors(straight.Ema.Module.named_parameters(), resumed.Ema.Module);
        var expected = straight.Optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        var actual = resumed.Optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].step, actual[i].step);
            Assert.True(expected[i].exp_avg.Equals(actual[i].exp_avg));
            Assert.True(expected[i].exp_avg_sq.Equals(actual[i].exp_avg_sq));
        }
        Assert.Equal(straight.Scheduler.CurrentLearningRate, resumed.Scheduler.CurrentLearningRate);
        Assert.Equal((1L, 0), (resumed.Guard.TotalSkipped, resumed.Guard.ConsecutiveSkipped));
    }

    [Fact]
    public void AModelOnlyResumeLoadsWeightsButRestartsOptimizerAndSchedule()
    {
        using (var first = new TinyTrainingRun())
        {
            first.Train(0, 4);
            new TrainingCheckpointer(new CheckpointWriter(new CheckpointOptions { CheckpointDir = Dir }), first.Components)
                .Save(new TrainProgress(4), cancellationToken: TestContext.Current.CancellationToken);
        }
        string folder = Path.Combine(Dir, "0000004");

        using var finetune = new TinyTrainingRun(initSeed: 50);
        ResumePlan plan = ResumePlanner.Plan(new TrainingOptions { ResumeFrom = folder, ResumeModelOnly = true, FinetuneFromEma = true });
        RestoreResult result = new TrainingCheckpointer(new CheckpointWriter(new CheckpointOptions { CheckpointDir = Path.Combine(_root.Path, "ft") }), finetune.Components)
            .Restore(plan, TestContext.Current.CancellationToken);

        Assert.Equal(0, result.StartStep);
        Assert.Null(result.State);
        Assert.Equal(0, finetune.Scheduler.NextStep);
        Assert.Equal(0.0, finetune.Scheduler.CurrentLearningRate); // warm-up restarts from 0
        Assert.All(finetune.Optimizer.state_dict().State.Cast<AdamW.State>(), s => Assert.Equal(0, s.step));
        using var saved = Bagel.Core.SafeTensors.SafeTensorsReader.Open(Path.Combine(folder, "ema.safetensors"));
        foreach ((string name, Parameter parameter) in finetune.Model.named_parameters())
            using (torch.Tensor fromEma = saved.ReadTensor(name)) Assert.True(fromEma.Equals(parameter), name);
    }
}
