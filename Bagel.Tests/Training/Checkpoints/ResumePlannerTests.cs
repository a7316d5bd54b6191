using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Checkpoints;

public sealed class ResumePlannerTests : IDisposable
{
    private readonly TempDirectory _root = new();

    public void Dispose() => _root.Dispose();

    private string CheckpointDir => Path.Combine(_root.Path, "checkpoints");

    private void SaveCheckpoint(long steps) =>
        new CheckpointWriter(new CheckpointOptions { CheckpointDir = CheckpointDir }).Save(
            new TrainState(TrainState.CurrentFormatVersion, steps, 0, 0, 0, 0, DateTimeOffset.UnixEpoch),
            [new CheckpointPart("model.safetensors", (p, _) => File.WriteAllText(p, "m")), new CheckpointPart("ema.safetensors", (p, _) => File.WriteAllText(p, "e"))],
            TestContext.Current.CancellationToken);

    private string ReleasedModel()
    {
        _root.File("hf/ema.safetensors", "released");
        return Path.Combine(_root.Path, "hf");
    }

    [Fact]
    public void NoResumeFromOrAMissingPathTrainsFromScratch()
    {
        Assert.Equal(ResumeKind.Scratch, ResumePlanner.Plan(new TrainingOptions { CheckpointDir = CheckpointDir }).Kind);
        ResumePlan missing = ResumePlanner.Plan(new TrainingOptions { CheckpointDir = CheckpointDir, ResumeFrom = Path.Combine(_root.Path, "nope") });
        Assert.Equal((ResumeKind.Scratch, 0L, (string?)null), (missing.Kind, missing.StartStep, missing.ModelWeightsFile));
    }

    [Fact]
    public void AFullResumeContinuesWithTheStepAfterTheCompletedOnes()
    {
        SaveCheckpoint(20);

        ResumePlan plan = ResumePlanner.Plan(new TrainingOptions { CheckpointDir = CheckpointDir, ResumeFrom = Path.Combine(CheckpointDir, "0000020") });

        Assert.Equal(ResumeKind.Full, plan.Kind);
        Assert.True(plan.LoadsTrainState);
        Assert.Equal(20, plan.StartStep); // 20 updates done; the 21st (0-based index 20) is next
        Assert.EndsWith("model.safetensors", plan.ModelWeightsFile, StringComparison.Ordinal);
        Assert.EndsWith("ema.safetensors", plan.EmaWeightsFile, StringComparison.Ordinal);
    }

    [Fact]
    public void TheFineTuneRecipeFirstLoadsTheReleasedEmaThenRelaunchesResumeFully()
    {
        string released = ReleasedModel();
        var recipe = new TrainingOptions
        {
            CheckpointDir = CheckpointDir, ResumeFrom = released, ResumeModelOnly = true, FinetuneFromEma = true, FinetuneFromHf = true, AutoResume = true,
        };

        ResumePlan first = ResumePlanner.Plan(recipe);
        Assert.Equal((ResumeKind.ModelOnly, 0L, false), (first.Kind, first.StartStep, first.FromAutoResume));
        Assert.Equal(Path.Combine(released, "ema.safetensors"), first.ModelWeightsFile);
        Assert.Equal(first.ModelWeightsFile, first.EmaWeightsFile);

        SaveCheckpoint(10);
        SaveCheckpoint(30);
        ResumePlan relaunch = ResumePlanner.Plan(recipe);
        Assert.Equal((ResumeKind.Full, 30L, true), (relaunch.Kind, relaunch.StartStep, relaunch.FromAutoResume));
        Assert.Equal(Path.Combine(CheckpointDir, "0000030", "model.safetensors"), relaunch.ModelWeightsFile);
    }

    [Fact]
    public void ModelOnlyWithoutEmaNeedsModelSafetensorsAndSaysSo()
    {
        string released = ReleasedModel();

        var exception = Assert.Throws<CheckpointException>(() => ResumePlanner.Plan(new TrainingOptions { ResumeFrom = released, ResumeModelOnly = true }));

        Assert.Contains("model.safetensors", exception.Message, StringComparison.Ordinal);
        Assert.Contains("finetune_from_ema", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FinetuneFromEmaAloneDoesNotChangeAFullResume()
    {
        SaveCheckpoint(5);

        ResumePlan plan = ResumePlanner.Plan(new TrainingOptions { ResumeFrom = Path.Combine(CheckpointDir, "0000005"), FinetuneFromEma = true });

        Assert.Equal(ResumeKind.Full, plan.Kind);
        Assert.EndsWith("model.safetensors", plan.ModelWeightsFile, StringComparison.Ordinal);
    }

    [Fact]
    public void AFullResumeFromAFolderWithoutTrainStateExplainsTheModelOnlyAlternative()
    {
        string released = ReleasedModel();

        var exception = Assert.Throws<CheckpointException>(() => ResumePlanner.Plan(new TrainingOptions { ResumeFrom = released }));

        Assert.Contains("train_state.json", exception.Message, StringComparison.Ordinal);
        Assert.Contains("resume_model_only", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AutoResumeWithAnEmptyCheckpointDirFallsBackToResumeFrom()
    {
        Directory.CreateDirectory(CheckpointDir);

        ResumePlan plan = ResumePlanner.Plan(new TrainingOptions { CheckpointDir = CheckpointDir, AutoResume = true });

        Assert.Equal(ResumeKind.Scratch, plan.Kind);
    }
}
