using Bagel.CustomLoop;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bagel.Tests.Samples;

/// <summary>
/// The Bagel.CustomLoop sample (a hand-written loop over <see cref="TrainingSession"/>): it runs with nothing but the
/// clone, its losses fall, and its checkpoints and the Trainer's resume each other with the next steps' losses equal,
/// bit for bit, to an uninterrupted run's.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds and draws from torch's global generator
public sealed class CustomLoopTests
{
    private const int TotalSteps = 6, Interruption = 3;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static Task<TinyRun> NewRunAsync(TempDirectory root, string checkpoints, int totalSteps = TotalSteps) =>
        TinyRun.CreateAsync(Path.Combine(root.Path, "data"), Path.Combine(root.Path, checkpoints), totalSteps, saveEvery: 1000, NullLogger.Instance, Token);

    /// <summary>Trains <paramref name="run"/> with the Trainer; <paramref name="stopAfter"/> cancels once that many steps are done.</summary>
    private static async Task<List<TrainingStepReport>> TrainerAsync(TinyRun run, long? stopAfter = null)
    {
        var steps = new List<TrainingStepReport>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Token);
        using Trainer trainer = new TrainerBuilder().UseModel(run.Model).UseData(run.Data).UseOptions(run.Configuration)
            .OnStep(steps.Add)
            .OnStep(step => { if (step.Step + 1 == stopAfter) stop.Cancel(); })
            .Build();
        await trainer.RunAsync(stop.Token);
        return steps;
    }

    private static async Task<List<TrainingStepReport>> CustomLoopAsync(TinyRun run, long? stopAfter = null)
    {
        var steps = new List<TrainingStepReport>();
        await CustomTrainingLoop.TrainAsync(run, NullLogger.Instance, steps.Add, stopAfter, Token);
        return steps;
    }

    private static (long Step, double Mse, double Ce, double Total, double GradNorm, double Lr, long Tokens) Figures(TrainingStepReport s) =>
        (s.Step, s.Mse, s.Ce, s.TotalLoss, s.GradNorm, s.LearningRate, s.Tokens);

    /// <summary>The straight Trainer run both mixed runs are held against.</summary>
    private static async Task<List<TrainingStepReport>> UninterruptedAsync(TempDirectory root)
    {
        using TinyRun run = await NewRunAsync(root, "straight");
        return await TrainerAsync(run);
    }

    private static void AssertSameFinalCheckpoint(TempDirectory root, string mixed)
    {
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName, CheckpointLayout.SchedulerFileName })
        {
            Assert.True(File.ReadAllBytes(Path.Combine(root.Path, "straight", CheckpointLayout.FolderName(TotalSteps), file))
                .SequenceEqual(File.ReadAllBytes(Path.Combine(root.Path, mixed, CheckpointLayout.FolderName(TotalSteps), file))), $"{file} differs");
        }
    }

    [Fact]
    public async Task TheSampleProgramTrainsStopsHalfWayAndResumesToTheEnd()
    {
        using var root = new TempDirectory();
        string results = Path.Combine(root.Path, "results");
        System.Reflection.MethodInfo main = typeof(CustomTrainingLoop).Assembly.EntryPoint!;

        object? exitCode = await Task.Run(() => main.Invoke(null, [new[] { "--steps", "6", "--save-every", "2", "--out", results }]), Token);

        Assert.Equal(0, exitCode);
        string checkpoints = Path.Combine(results, "checkpoints");
        // Every save_every steps, the interruption at 3 and the end; each a complete checkpoint in the Trainer's layout.
        Assert.Equal([2L, 3L, 4L, 6L], CheckpointCatalog.List(checkpoints).Select(c => c.CompletedSteps));
        string last = Path.Combine(checkpoints, CheckpointLayout.FolderName(6));
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName,
                     CheckpointLayout.SchedulerFileName, CheckpointLayout.RngStateFileName, CheckpointLayout.DataStatusFileName, CheckpointLayout.TrainStateFileName })
            Assert.True(File.Exists(Path.Combine(last, file)), $"{file} is missing from {last}");
        TrainState state = TrainState.Read(Path.Combine(last, CheckpointLayout.TrainStateFileName));
        Assert.Equal(6, state.CompletedSteps);
        Assert.True(state.TokensSeen > 0 && state.SamplesSeen > 0, $"tokens {state.TokensSeen}, samples {state.SamplesSeen}");
    }

    [Fact]
    public async Task ItsLossesFallOverThirtySteps()
    {
        using var root = new TempDirectory();
        using TinyRun run = await NewRunAsync(root, "checkpoints", totalSteps: 30);
        List<TrainingStepReport> steps = await CustomLoopAsync(run);

        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), steps.Select(s => s.Step));
        Assert.All(steps, s => Assert.True(double.IsFinite(s.TotalLoss) && !s.Skipped, $"step {s.Step}: loss {s.TotalLoss}"));
        double Mean(IEnumerable<double> values) => values.Average();
        Assert.True(Mean(steps.TakeLast(5).Select(s => s.Ce)) < 0.6 * Mean(steps.Take(5).Select(s => s.Ce)), $"ce {string.Join(", ", steps.Select(s => s.Ce))}");
        Assert.True(Mean(steps.TakeLast(5).Select(s => s.Mse)) < 0.95 * Mean(steps.Take(5).Select(s => s.Mse)), $"mse {string.Join(", ", steps.Select(s => s.Mse))}");
    }

    [Fact]
    public async Task ACustomLoopCheckpointResumesInTheTrainerWithTheUninterruptedRunsLosses()
    {
        using var root = new TempDirectory();
        List<TrainingStepReport> straight = await UninterruptedAsync(root);

        List<TrainingStepReport> head, tail;
        using (TinyRun first = await NewRunAsync(root, "mixed")) head = await CustomLoopAsync(first, stopAfter: Interruption);
        using (TinyRun second = await NewRunAsync(root, "mixed")) tail = await TrainerAsync(second);

        // From scratch the custom loop makes the Trainer's steps; after the resume the Trainer goes on as if never stopped.
        Assert.Equal(straight.Take(Interruption).Select(Figures), head.Select(Figures));
        Assert.Equal(straight.Skip(Interruption).Select(Figures), tail.Select(Figures));
        AssertSameFinalCheckpoint(root, "mixed");
    }

    [Fact]
    public async Task ATrainerCheckpointResumesInTheCustomLoopWithTheUninterruptedRunsLosses()
    {
        using var root = new TempDirectory();
        List<TrainingStepReport> straight = await UninterruptedAsync(root);

        List<TrainingStepReport> head, tail;
        using (TinyRun first = await NewRunAsync(root, "mixed")) head = await TrainerAsync(first, stopAfter: Interruption);
        using (TinyRun second = await NewRunAsync(root, "mixed")) tail = await CustomLoopAsync(second);

        Assert.Equal(straight.Take(Interruption).Select(Figures), head.Select(Figures));
        Assert.Equal(straight.Skip(Interruption).Select(Figures), tail.Select(Figures));
        AssertSameFinalCheckpoint(root, "mixed");
    }
}
