using System.Globalization;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;

namespace Bagel.Tests.Training.Models;

/// <summary>
/// Exact resume after a real SIGKILL in the middle of a checkpoint save, with the BAGEL composite and a 2-worker pipeline:
/// the parent test starts this test assembly again, running only <see cref="ChildTrainsUntilKilledInsideTheSaveOfStepTwenty"/>,
/// which trains with <c>save_every</c> 10 and pauses after writing <c>model.safetensors</c> of step 20 into the temp
/// folder; the parent SIGKILLs it there, auto-resumes from step 10 in-process and compares with one straight run.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class BagelTrainingKillTests
{
    private const string ChildDirVariable = "BAGEL_TEST_KILL_TRAINING_DIR";
    private const string MarkerName = "in-save-of-step-20.marker";
    private const string StepsName = "steps.txt";
    private const int SaveEvery = 10;
    private const int KilledInSaveOf = 20;

    [Fact]
    [NeedsSharedData("tokenizer/qwen2.5")]
    public async Task ChildTrainsUntilKilledInsideTheSaveOfStepTwenty()
    {
        string? root = Environment.GetEnvironmentVariable(ChildDirVariable);
        Assert.SkipWhen(root is null, $"Runs only as the child process of {nameof(ASigkillDuringASaveOfTheCompositeResumesBitIdentically)}.");
        using var fixture = new LoopFixture();
        var configuration = CompositeTrainingRuns.Configuration(fixture, "unused", SaveEvery);
        configuration.Training.CheckpointDir = Path.Combine(root!, "checkpoints");
        using var steps = new StreamWriter(Path.Combine(root!, StepsName)) { AutoFlush = true };
        CheckpointWriter.PartWrittenHook = (step, part) =>
        {
            if (step != KilledInSaveOf || part != CheckpointLayout.ModelFileName) return;
            File.WriteAllText(Path.Combine(root!, MarkerName), "");
            Thread.Sleep(Timeout.Infinite); // killed here, with model.safetensors of step 20 in the temp folder
        };
        await CompositeTrainingRuns.RunAsync(fixture, configuration, modelSeed: 1, onStep: s => steps.WriteLine(Format(s)));
        Assert.Fail("The child should have been killed inside the save of step 20.");
    }

    [Fact]
    [NeedsSharedData("tokenizer/qwen2.5")]
    public async Task ASigkillDuringASaveOfTheCompositeResumesBitIdentically()
    {
        using var fixture = new LoopFixture();
        using var childDir = new TempDirectory();
        string checkpoints = Path.Combine(childDir.Path, "checkpoints");
        var (_, straight, straightModel) = await CompositeTrainingRuns.RunAsync(fixture, CompositeTrainingRuns.Configuration(fixture, "straight"), modelSeed: 1);
        straightModel.Dispose();

        ChildTestProcess.RunUntilMarkerThenKill(typeof(BagelTrainingKillTests), nameof(ChildTrainsUntilKilledInsideTheSaveOfStepTwenty),
            ChildDirVariable, childDir.Path, Path.Combine(childDir.Path, MarkerName), TimeSpan.FromMinutes(3));

        // The half-written save is a temp folder; discovery finds step 10 and the child's first 20 steps match.
        string leftover = Assert.Single(Directory.GetDirectories(checkpoints, CheckpointLayout.TemporaryPrefix + "*"));
        Assert.True(File.Exists(Path.Combine(leftover, CheckpointLayout.ModelFileName)));
        Assert.False(File.Exists(Path.Combine(leftover, CheckpointLayout.TrainStateFileName)));
        Assert.Equal(SaveEvery, CheckpointCatalog.FindLatest(checkpoints)?.CompletedSteps);
        string[] childSteps = await File.ReadAllLinesAsync(Path.Combine(childDir.Path, StepsName), TestContext.Current.CancellationToken);
        Assert.Equal(straight.Take(KilledInSaveOf).Select(Format), childSteps);

        // auto_resume continues from step 10 (the model seed differs: the checkpoint must overwrite every weight).
        var configuration = CompositeTrainingRuns.Configuration(fixture, "unused");
        configuration.Training.CheckpointDir = checkpoints;
        var (resumed, tail, resumedModel) = await CompositeTrainingRuns.RunAsync(fixture, configuration, modelSeed: 99);
        resumedModel.Dispose();
        Assert.Equal(SaveEvery, resumed.StartStep);
        Assert.Equal(40, resumed.CompletedSteps);
        Assert.Empty(Directory.GetDirectories(checkpoints, CheckpointLayout.TemporaryPrefix + "*")); // the next save cleaned up
        Assert.Equal(straight.Skip(SaveEvery).Select(Format), tail.Select(Format));
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName })
        {
            Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "straight", CheckpointLayout.FolderName(40), file), TestContext.Current.CancellationToken),
                         await File.ReadAllBytesAsync(Path.Combine(checkpoints, CheckpointLayout.FolderName(40), file), TestContext.Current.CancellationToken));
        }
    }

    /// <summary>A step's figures with their exact bits, so text comparison is bitwise.</summary>
    private static string Format(TrainingStepReport s) => string.Create(CultureInfo.InvariantCulture,
        $"{s.Step} {BitConverter.DoubleToInt64Bits(s.Mse):X16} {BitConverter.DoubleToInt64Bits(s.Ce):X16} {BitConverter.DoubleToInt64Bits(s.GradNorm):X16} {s.Tokens}");
}
