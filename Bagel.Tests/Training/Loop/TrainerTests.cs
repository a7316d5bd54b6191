using System.Text.RegularExpressions;
using Bagel.Core.Metrics;
using Bagel.Training.Checkpoints;
using Bagel.Training.Loop;
using Bagel.Training.Metrics;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Tests.Training.Loop;

[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed partial class TrainerTests
{
    private static async Task<(TrainingRunResult Result, List<TrainingStepReport> Steps)> RunAsync(
        LoopFixture fixture, TinyPackedModel model, TrainingConfiguration configuration,
        Action<TrainerBuilder>? configure = null, Func<TrainingStepReport, bool>? cancelAfter = null, Action<Trainer>? inspect = null)
    {
        var steps = new List<TrainingStepReport>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var builder = new TrainerBuilder()
            .UseModel(model)
            .UseData(await fixture.PipelineAsync())
            .UseOptions(configuration)
            .OnStep(steps.Add)
            .OnStep(step => { if (cancelAfter?.Invoke(step) == true) stop.Cancel(); });
        configure?.Invoke(builder);
        using Trainer trainer = builder.Build();
        TrainingRunResult result = await trainer.RunAsync(stop.Token);
        inspect?.Invoke(trainer);
        return (result, steps);
    }

    private static double MeanOf(IEnumerable<double> values) => values.Average();

    [Fact]
    public async Task LossesGoDownOverThirtySteps()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 1);
        var (result, steps) = await RunAsync(fixture, model, fixture.Configuration("ckpt", totalSteps: 30));

        Assert.Equal(30, result.CompletedSteps);
        Assert.False(result.Cancelled);
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), steps.Select(s => s.Step));
        List<double> ce = [.. steps.Where(s => s.CeTokens > 0).Select(s => s.Ce)], mse = [.. steps.Where(s => s.MseTokens > 0).Select(s => s.Mse)];
        Assert.True(ce.Count >= 10 && mse.Count >= 10, $"the data gave {ce.Count} CE and {mse.Count} MSE steps");
        Assert.True(MeanOf(ce.TakeLast(5)) < 0.8 * MeanOf(ce.Take(5)), $"ce {string.Join(", ", ce)}");
        Assert.True(MeanOf(mse.TakeLast(5)) < 0.8 * MeanOf(mse.Take(5)), $"mse {string.Join(", ", mse)}");
        Assert.True(Directory.Exists(Path.Combine(fixture.Root, "ckpt", CheckpointLayout.FolderName(30))));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task ResumeAfterAStopReproducesTheStraightRunBitForBit(int gradientAccumulationSteps)
    {
        using var fixture = new LoopFixture();
        TrainingConfiguration Configuration(string run)
        {
            TrainingConfiguration configuration = fixture.Configuration(run, totalSteps: 12, autoResume: true);
            configuration.Training.GradientAccumulationSteps = gradientAccumulationSteps;
            return configuration;
        }

        using var straightModel = new TinyPackedModel(seed: 1);
        var (_, straight) = await RunAsync(fixture, straightModel, Configuration("straight"));

        // First half: cancelled after 6 steps (final checkpoint of 6), then a new trainer over a differently initialised model auto-resumes.
        List<TrainingStepReport> head;
        using (var firstModel = new TinyPackedModel(seed: 1))
        {
            (TrainingRunResult first, head) = await RunAsync(fixture, firstModel, Configuration("split"), cancelAfter: s => s.Step == 5);
            Assert.True(first.Cancelled);
            Assert.Equal(6, first.CompletedSteps);
        }
        using var resumedModel = new TinyPackedModel(seed: 99);
        var (second, tail) = await RunAsync(fixture, resumedModel, Configuration("split"));
        Assert.Equal(6, second.StartStep);
        Assert.Equal(12, second.CompletedSteps);

        Assert.Equal(Enumerable.Range(0, 12).Select(i => (long)i), head.Concat(tail).Select(s => s.Step));
        Assert.Equal(straight.Select(Figures), head.Concat(tail).Select(Figures));
        foreach (string file in new[] { CheckpointLayout.ModelFileName, CheckpointLayout.EmaFileName, CheckpointLayout.OptimizerFileName, CheckpointLayout.SchedulerFileName })
        {
            Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "straight", CheckpointLayout.FolderName(12), file), TestContext.Current.CancellationToken),
                await File.ReadAllBytesAsync(Path.Combine(fixture.Root, "split", CheckpointLayout.FolderName(12), file), TestContext.Current.CancellationToken));
        }
        foreach (var ((name, a), (_, b)) in straightModel.Module.named_parameters().Zip(resumedModel.Module.named_parameters()))
            Assert.True(a.bytes.SequenceEqual(b.bytes), $"parameter {name} differs");
    }

    private static (double Mse, double Ce, double Total, double GradNorm, double Lr) Figures(TrainingStepReport s) => (s.Mse, s.Ce, s.TotalLoss, s.GradNorm, s.LearningRate);

    [Fact]
    public async Task CancellationFinishesTheStepAndWritesAFinalCheckpoint()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 2);
        var saved = new List<CheckpointInfo>();
        var (result, steps) = await RunAsync(fixture, model, fixture.Configuration("ckpt", totalSteps: 50, saveEvery: 2),
            configure: b => b.OnSave(saved.Add), cancelAfter: s => s.Step == 2);

        Assert.True(result.Cancelled);
        Assert.Equal(3, result.CompletedSteps);
        Assert.Equal(3, steps.Count);
        Assert.Equal([2L, 3L], saved.Select(c => c.CompletedSteps));
        string folder = Path.Combine(fixture.Root, "ckpt", CheckpointLayout.FolderName(3));
        Assert.Equal(folder, result.LastCheckpoint);
        Assert.Equal(3, TrainState.Read(Path.Combine(folder, CheckpointLayout.TrainStateFileName)).CompletedSteps);
        Assert.True(File.Exists(Path.Combine(folder, CheckpointLayout.DataStatusFileName)));
        Assert.Equal(3, ResumePlanner.Plan(fixture.Configuration("ckpt", 50, autoResume: true).Training).StartStep);
    }

    [Fact]
    public async Task ANonFiniteLossSkipsTheUpdateAndIsCounted()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 3);
        model.NanAtCalls.Add(2);
        Dictionary<string, torch.Tensor>? before = null, after = null;
        var (result, steps) = await RunAsync(fixture, model, fixture.Configuration("ckpt", totalSteps: 4),
            configure: b => b.OnStep(s =>
            {
                if (s.Step == 1) before = Snapshot(model);
                if (s.Step == 2) after = Snapshot(model);
            }));

        Assert.Equal([false, false, true, false], steps.Select(s => s.Skipped));
        Assert.Equal(1, result.SkippedNonFiniteSteps);
        Assert.Equal(4, result.CompletedSteps);
        Assert.All(model.Module.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
        Assert.NotNull(before);
        Assert.NotNull(after);
        Assert.All(before, p => Assert.True(p.Value.bytes.SequenceEqual(after[p.Key].bytes), $"{p.Key} changed in the skipped step"));
        Assert.Equal(1, TrainState.Read(Path.Combine(result.LastCheckpoint, CheckpointLayout.TrainStateFileName)).SkippedNonFiniteSteps);
    }

    [Fact]
    public async Task TooManyNonFiniteLossesInARowStopTheRun()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 3);
        foreach (int call in Enumerable.Range(1, 10)) model.NanAtCalls.Add(call);
        await Assert.ThrowsAsync<NonFiniteLossException>(() => RunAsync(fixture, model, fixture.Configuration("ckpt", totalSteps: 10), configure: b => b.UseNonFiniteLimit(2)));
    }

    [Fact]
    public async Task LogLinesFollowTheReferenceFormatAndSinksGetEveryLoggedStep()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 4);
        using var provider = new CollectingLoggerProvider();
        string jsonl = Path.Combine(fixture.Root, "metrics.jsonl");
        await using var sink = new JsonlMetricSink(jsonl);
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps: 5);
        configuration.Training.LogEvery = 2;
        await RunAsync(fixture, model, configuration, configure: b => b.UseLogger(provider).AddMetricSink(sink));

        List<string> lines = [.. provider.Messages.Where(m => m.StartsWith("(step=", StringComparison.Ordinal))];
        Assert.Equal(["(step=0000000)", "(step=0000002)", "(step=0000004)"], lines.Select(l => l[..14]));
        Assert.All(lines, l => Assert.Matches(ReferenceLine(), l));
        string[] records = await File.ReadAllLinesAsync(jsonl, TestContext.Current.CancellationToken);
        Assert.Equal(3, records.Length);
        Assert.All(records, r => Assert.Contains($"\"{ReferenceMetricNames.Mse}\"", r, StringComparison.Ordinal));
    }

    [GeneratedRegex(@"^\(step=\d{7}\) Train Loss mse: \d+\.\d{4}, Train Loss ce: \d+\.\d{4}, Train Steps/Sec: \d+\.\d{2}, Tokens/Sec: \d+\.\d{2}k, (MFU: \d+\.\d%, )?LR: ")]
    private static partial Regex ReferenceLine();

    private static Dictionary<string, torch.Tensor> Snapshot(TinyPackedModel model) =>
        model.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
}
