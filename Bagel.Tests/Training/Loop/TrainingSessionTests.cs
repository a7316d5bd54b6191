using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Options;
using TorchSharp;

namespace Bagel.Tests.Training.Loop;

[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // Restore seeds torch's global generator
public sealed class TrainingSessionTests
{
    private static TrainingConfiguration Configuration(string checkpoints)
    {
        TrainingConfiguration configuration = TrainingConfiguration.Defaults();
        configuration.Data.NumWorkers = 1;
        configuration.Training.CheckpointDir = checkpoints;
        configuration.Training.AutoResume = true;
        configuration.Training.Ema = 0.9;
        return configuration;
    }

    [Fact]
    public void ABadFlagIsReportedWhenTheSessionIsBuilt()
    {
        using var model = new TinyPackedModel(seed: 1);
        TrainingConfiguration configuration = Configuration("unused");
        configuration.Training.Lr = -1;
        var error = Assert.Throws<InvalidTrainingOptionsException>(() => new TrainingSession(model, configuration));
        Assert.Contains(error.Failures, f => f.Contains("lr", StringComparison.Ordinal));
    }

    [Fact]
    public void FromScratchRestoreSeedsTorchAndStartsAtZeroWithNoDataStatus()
    {
        using var root = new TempDirectory();
        using var model = new TinyPackedModel(seed: 1);
        using var session = new TrainingSession(model, Configuration(Path.Combine(root.Path, "ckpt")));
        torch.manual_seed(12345);

        TrainingResume resume = session.Restore(TestContext.Current.CancellationToken);

        Assert.Equal(new TrainProgress(0), resume.Progress);
        Assert.Equal(0, resume.StartStep);
        Assert.Null(resume.DataStatus);
        Assert.Equal(ResumeKind.Scratch, ResumePlanner.Plan(session.Configuration.Training).Kind);
        float afterRestore = torch.rand(1).item<float>();
        using var other = new TrainingSession(model, Configuration(Path.Combine(root.Path, "other")));
        other.Restore(TestContext.Current.CancellationToken);
        Assert.Equal(afterRestore, torch.rand(1).item<float>()); // the same global_seed gives the same first draw
        Assert.Throws<InvalidOperationException>(() => session.Restore(TestContext.Current.CancellationToken));
    }

    [Fact]
    public void SaveWritesTheTrainersLayoutAndANewSessionRestoresItsCountersWeightsAndSchedule()
    {
        using var root = new TempDirectory();
        string checkpoints = Path.Combine(root.Path, "ckpt");
        using var model = new TinyPackedModel(seed: 1);
        TrainProgress progress = new TrainProgress(0).AfterStep(tokens: 100, samples: 3).AfterStep(tokens: 50, samples: 2);
        Assert.Equal(new TrainProgress(2, 150, 5), progress);
        using (var session = new TrainingSession(model, Configuration(checkpoints)))
        {
            session.Restore(TestContext.Current.CancellationToken);
            session.Scheduler.Step();
            session.Scheduler.Step();
            CheckpointInfo info = session.Save(progress, dataStatus: null, TestContext.Current.CancellationToken);
            Assert.Equal(Path.Combine(checkpoints, CheckpointLayout.FolderName(2)), info.Folder);
        }

        using var resumedModel = new TinyPackedModel(seed: 7);
        using var resumed = new TrainingSession(resumedModel, Configuration(checkpoints));
        TrainingResume resume = resumed.Restore(TestContext.Current.CancellationToken);

        Assert.Equal(progress, resume.Progress);
        Assert.Equal(2, resumed.Scheduler.NextStep);
        Assert.Null(resume.DataStatus); // saved without one: the data restarts from its beginning
        foreach (var ((name, a), (_, b)) in model.Module.named_parameters().Zip(resumedModel.Module.named_parameters()))
            Assert.True(a.bytes.SequenceEqual(b.bytes), $"parameter {name} was not restored");
    }
}
