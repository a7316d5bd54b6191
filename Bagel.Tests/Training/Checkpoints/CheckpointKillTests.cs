using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;

namespace Bagel.Tests.Training.Checkpoints;

/// <summary>
/// A real SIGKILL during a save: the parent test starts this test assembly again, running only
/// <see cref="ChildSavesStepTenThenHangsInsideTheSaveOfStepTwenty"/>, and kills it while the save of step 20 is half
/// written.
/// </summary>
public sealed class CheckpointKillTests
{
    private const string ChildDirVariable = "BAGEL_TEST_KILL_CHECKPOINT_DIR";
    private const string MarkerName = "in-save.marker";

    private static TrainState State(long steps) => new(TrainState.CurrentFormatVersion, steps, 0, 0, 0, 0, DateTimeOffset.UnixEpoch);

    private static CheckpointPart Text(string name, string content) => new(name, (path, _) => File.WriteAllText(path, content));

    [Fact]
    public void ChildSavesStepTenThenHangsInsideTheSaveOfStepTwenty()
    {
        string? root = Environment.GetEnvironmentVariable(ChildDirVariable);
        Assert.SkipWhen(root is null, $"Runs only as the child process of {nameof(ASigkillDuringASaveLeavesThePreviousCheckpointForAutoResume)}.");
        var writer = new CheckpointWriter(new CheckpointOptions { CheckpointDir = Path.Combine(root!, "checkpoints") });
        writer.Save(State(10), [Text("model.safetensors", "ten")], TestContext.Current.CancellationToken);
        writer.Save(State(20), [
            Text("model.safetensors", "twenty"),
            new CheckpointPart("ema.safetensors", (path, _) =>
            {
                File.WriteAllText(path, "half");
                File.WriteAllText(Path.Combine(root!, MarkerName), "");
                Thread.Sleep(Timeout.Infinite); // killed here
            }),
        ], TestContext.Current.CancellationToken);
    }

    [Fact]
    public void ASigkillDuringASaveLeavesThePreviousCheckpointForAutoResume()
    {
        using var folder = new TempDirectory();
        ChildTestProcess.RunUntilMarkerThenKill(typeof(CheckpointKillTests), nameof(ChildSavesStepTenThenHangsInsideTheSaveOfStepTwenty),
            ChildDirVariable, folder.Path, Path.Combine(folder.Path, MarkerName), TimeSpan.FromSeconds(60));

        string checkpoints = Path.Combine(folder.Path, "checkpoints");
        string leftover = Assert.Single(Directory.GetDirectories(checkpoints, CheckpointLayout.TemporaryPrefix + "*"));
        Assert.True(File.Exists(Path.Combine(leftover, "ema.safetensors")));
        CheckpointInfo? latest = CheckpointCatalog.FindLatest(checkpoints);
        Assert.Equal(10, latest?.CompletedSteps);
        Assert.Equal("ten", File.ReadAllText(latest!.File("model.safetensors")));

        new CheckpointWriter(new CheckpointOptions { CheckpointDir = checkpoints }).Save(State(20), [Text("model.safetensors", "twenty")], TestContext.Current.CancellationToken);
        Assert.False(Directory.Exists(leftover));
        Assert.Equal([10L, 20L], CheckpointCatalog.List(checkpoints).Select(c => c.CompletedSteps));
    }
}
