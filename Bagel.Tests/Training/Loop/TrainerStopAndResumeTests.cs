using System.Runtime.InteropServices;
using System.Text.Json;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Training.Metrics;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Metrics;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Loop;

/// <summary>
/// A builder app stopped by SIGTERM (graceful, <see cref="TrainerBuilder.StopOnSignals"/>) or SIGKILL, then resumed:
/// the child process is this test assembly running <see cref="ChildTrainsUntilStopped"/>; the parent resumes in process
/// and reads the default metric files back (JSONL as JSON, TensorBoard with the independent reader).
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class TrainerStopAndResumeTests
{
    private const string ChildDirVariable = "BAGEL_TEST_STOP_RUN_DIR";
    private const string MarkerName = "stop-here.marker";
    private const string ResultName = "child-result.txt";
    private const int TotalSteps = 16;
    private const int MarkerStep = 9;

    private static TrainingConfiguration Configuration(LoopFixture fixture, string root)
    {
        TrainingConfiguration configuration = fixture.Configuration("unused", TotalSteps, saveEvery: 4, autoResume: true);
        configuration.Training.CheckpointDir = Path.Combine(root, "checkpoints");
        configuration.Training.ResultsDir = Path.Combine(root, "results");
        return configuration;
    }

    [Fact]
    public async Task ChildTrainsUntilStopped()
    {
        string? root = Environment.GetEnvironmentVariable(ChildDirVariable);
        Assert.SkipWhen(root is null, $"Runs only as the child process of the tests of {nameof(TrainerStopAndResumeTests)}.");
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 1);
        using Trainer trainer = new TrainerBuilder()
            .UseModel(model)
            .UseData(await fixture.PipelineAsync())
            .UseOptions(Configuration(fixture, root!))
            .StopOnSignals()
            .OnStep(report =>
            {
                if (report.Step == MarkerStep) File.WriteAllText(Path.Combine(root!, MarkerName), "");
                if (report.Step >= MarkerStep) Thread.Sleep(500); // slow steps: the signal arrives mid-run
            })
            .Build();
        TrainingRunResult result = await trainer.RunAsync(CancellationToken.None);
        File.WriteAllText(Path.Combine(root!, ResultName), $"{result.Cancelled} {result.StopSignal} {result.CompletedSteps}");
    }

    [Fact]
    public async Task SigtermStopsAfterTheStepWithAFinalCheckpointAndWholeMetricLines()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "POSIX signals.");
        using var folder = new TempDirectory();
        var (exitCode, output) = ChildTestProcess.RunUntilMarkerThenSignal(typeof(TrainerStopAndResumeTests), nameof(ChildTrainsUntilStopped),
            ChildDirVariable, folder.Path, Path.Combine(folder.Path, MarkerName), "TERM", TimeSpan.FromSeconds(120));

        Assert.True(exitCode == 0, $"the child exited with {exitCode}:\n{output}");
        string[] result = File.ReadAllText(Path.Combine(folder.Path, ResultName)).Split(' ');
        Assert.Equal("True", result[0]);
        Assert.Equal(nameof(PosixSignal.SIGTERM), result[1]);
        long stoppedAt = long.Parse(result[2], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(stoppedAt, MarkerStep + 1, TotalSteps - 1);
        Assert.Equal(stoppedAt, CheckpointCatalog.FindLatest(Path.Combine(folder.Path, "checkpoints"))?.CompletedSteps);
        Assert.Equal(Steps(0, stoppedAt), JsonlSteps(folder.Path));

        await ResumeAndCheckEveryStepOnceAsync(folder.Path);
    }

    [Fact]
    public async Task AfterASigkillTheResumedRunLeavesEveryMetricFileWithEachStepOnce()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "POSIX signals.");
        using var folder = new TempDirectory();
        ChildTestProcess.RunUntilMarkerThenKill(typeof(TrainerStopAndResumeTests), nameof(ChildTrainsUntilStopped),
            ChildDirVariable, folder.Path, Path.Combine(folder.Path, MarkerName), TimeSpan.FromSeconds(120));

        Assert.Equal(8, CheckpointCatalog.FindLatest(Path.Combine(folder.Path, "checkpoints"))?.CompletedSteps);
        // Every logged step is in the file although the process never flushed or closed it.
        Assert.Equal(Steps(0, MarkerStep + 1), JsonlSteps(folder.Path));

        await ResumeAndCheckEveryStepOnceAsync(folder.Path);
    }

    private static async Task ResumeAndCheckEveryStepOnceAsync(string root)
    {
        using (var fixture = new LoopFixture())
        using (var model = new TinyPackedModel(seed: 7))
        {
            using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(Configuration(fixture, root)).Build();
            TrainingRunResult resumed = await trainer.RunAsync(TestContext.Current.CancellationToken);
            Assert.True(resumed.StartStep > 0);
            Assert.Equal(TotalSteps, resumed.CompletedSteps);
        }

        Assert.Equal(Steps(0, TotalSteps), JsonlSteps(root));
        string tensorBoard = Path.Combine(root, "results", TrainerBuilder.DefaultTensorBoardFolder);
        List<long> eventSteps = [.. Directory.GetFiles(tensorBoard, "events.out.tfevents.*")
            .SelectMany(TfRecordEventReader.Read)
            .Where(e => e.Values.Any(v => v.Tag == "mse"))
            .Select(e => e.Step)
            .Order()];
        Assert.Equal(Steps(0, TotalSteps), eventSteps);
    }

    private static List<long> Steps(long from, long to) => [.. Enumerable.Range((int)from, (int)(to - from)).Select(i => (long)i)];

    /// <summary>The steps of metrics.jsonl in file order; every line must be a whole JSON object.</summary>
    private static List<long> JsonlSteps(string root) =>
        [.. File.ReadAllLines(Path.Combine(root, "results", JsonlMetricSink.DefaultFileName)).Select(line => JsonDocument.Parse(line).RootElement.GetProperty("step").GetInt64())];
}
