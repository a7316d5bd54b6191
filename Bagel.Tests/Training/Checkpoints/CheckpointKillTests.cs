using System.Diagnostics;
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
        string assembly = typeof(CheckpointKillTests).Assembly.Location;
        string appHost = Path.ChangeExtension(assembly, OperatingSystem.IsWindows() ? ".exe" : null);
        var start = File.Exists(appHost) ? new ProcessStartInfo(appHost) : new ProcessStartInfo("dotnet") { ArgumentList = { "exec", assembly } };
        foreach (string argument in new[] { "-method", $"{typeof(CheckpointKillTests).FullName}.{nameof(ChildSavesStepTenThenHangsInsideTheSaveOfStepTwenty)}" })
            start.ArgumentList.Add(argument);
        start.Environment[ChildDirVariable] = folder.Path;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using Process child = Process.Start(start)!;
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();

        string marker = Path.Combine(folder.Path, MarkerName);
        try
        {
            var clock = Stopwatch.StartNew();
            while (!File.Exists(marker) && !child.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(20);
            Assert.True(File.Exists(marker), "The child never reached the middle of its second save.");
        }
        finally
        {
            if (!child.HasExited) child.Kill(); // SIGKILL on Unix: no finally blocks, no cleanup in the child
            child.WaitForExit();
        }

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
