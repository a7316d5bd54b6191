using System.Text.Json;
using Bagel.Core.Metrics;
using Bagel.Training.Logging;
using Bagel.Training.Loop;
using Bagel.Training.Metrics;
using Bagel.Training.Options;
using Microsoft.Extensions.Logging;

namespace Bagel.Tests.Training.Loop;

/// <summary>What a builder app gets without asking: plan warnings, default metric files, the first step logged.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class TrainerDefaultsTests
{
    [Fact]
    public async Task BuildWarnsAboutSettingsThatDoNotFitTheRun()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 1);
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps: 50);
        configuration.Training.WarmupSteps = 2000; // the reference's defaults in a 50-step trial
        configuration.Training.SaveEvery = 2000;
        configuration.Training.LogEvery = 100;
        configuration.Training.ExpectedNumTokens = 32768;
        var logs = new CollectingLoggerProvider();

        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(configuration).UseLogger(logs).Build();

        string all = string.Join("\n", logs.Messages);
        Assert.Contains("warmup_steps 2000 is not below total_steps 50", all, StringComparison.Ordinal);
        Assert.Contains("save_every 2000 is above total_steps 50", all, StringComparison.Ordinal);
        Assert.Contains("log_every 100 is above total_steps 50", all, StringComparison.Ordinal);
        Assert.Contains("expected_num_tokens 32768", all, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FittingSettingsGiveNoPlanWarning()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 1);
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps: 50, saveEvery: 10);
        configuration.Training.ExpectedNumTokens = 120;
        var logs = new CollectingLoggerProvider();

        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(configuration).UseLogger(logs).Build();

        Assert.DoesNotContain(logs.Messages, m => m.Contains("total_steps", StringComparison.Ordinal) || m.Contains("expected_num_tokens", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WithoutASinkTheRunWritesJsonlAndTensorBoardUnderResultsDirUnlessTurnedOff()
    {
        using var fixture = new LoopFixture();
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps: 3);
        configuration.Training.ResultsDir = Path.Combine(fixture.Root, "defaults");
        using (var model = new TinyPackedModel(seed: 1))
        using (Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(configuration).UseLogger(new CollectingLoggerProvider()).Build())
            await trainer.RunAsync(TestContext.Current.CancellationToken);

        string[] lines = File.ReadAllLines(Path.Combine(configuration.Training.ResultsDir, JsonlMetricSink.DefaultFileName));
        Assert.Equal([0L, 1L, 2L], lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(configuration.Training.ResultsDir, TrainerBuilder.DefaultTensorBoardFolder), "events.out.tfevents.*"));

        configuration.Training.ResultsDir = Path.Combine(fixture.Root, "off");
        configuration.Training.CheckpointDir = Path.Combine(fixture.Root, "ckpt-off");
        var logs = new CollectingLoggerProvider();
        using (var model = new TinyPackedModel(seed: 1))
        using (Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(configuration).UseLogger(logs).UseDefaultMetricSinks(false).Build())
            await trainer.RunAsync(TestContext.Current.CancellationToken);
        Assert.False(File.Exists(Path.Combine(configuration.Training.ResultsDir, JsonlMetricSink.DefaultFileName)));
        Assert.False(Directory.Exists(Path.Combine(configuration.Training.ResultsDir, TrainerBuilder.DefaultTensorBoardFolder)));
    }

    [Fact]
    public async Task AnAddedSinkReplacesTheDefaultsSoNothingIsWrittenTwice()
    {
        using var fixture = new LoopFixture();
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps: 2);
        configuration.Training.ResultsDir = Path.Combine(fixture.Root, "own");
        var sink = new ListSink();
        using (var model = new TinyPackedModel(seed: 1))
        using (Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(configuration)
                   .UseLogger(new CollectingLoggerProvider()).AddMetricSink(sink).Build())
            await trainer.RunAsync(TestContext.Current.CancellationToken);

        Assert.Equal([0L, 1L], sink.Steps);
        Assert.False(File.Exists(Path.Combine(configuration.Training.ResultsDir, JsonlMetricSink.DefaultFileName)));
        Assert.False(Directory.Exists(Path.Combine(configuration.Training.ResultsDir, TrainerBuilder.DefaultTensorBoardFolder)));
    }

    [Fact]
    public async Task TheFirstStepOfAResumedRunIsLoggedWhateverLogEvery()
    {
        using var fixture = new LoopFixture();
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps: 8, autoResume: true);
        configuration.Training.LogEvery = 10;
        var first = new ListSink();
        using (var model = new TinyPackedModel(seed: 1))
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken))
        using (Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(configuration)
                   .UseLogger(new CollectingLoggerProvider()).AddMetricSink(first).OnStep(s => { if (s.Step == 2) stop.Cancel(); }).Build())
            await trainer.RunAsync(stop.Token);
        var resumed = new ListSink();
        var logs = new CollectingLoggerProvider();
        using (var model = new TinyPackedModel(seed: 1))
        using (Trainer trainer = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(configuration)
                   .UseLogger(logs).AddMetricSink(resumed).Build())
            await trainer.RunAsync(TestContext.Current.CancellationToken);

        Assert.Equal([0L], first.Steps);
        Assert.Equal([3L], resumed.Steps);
        Assert.Single(logs.Messages, m => m.StartsWith("(step=0000003)", StringComparison.Ordinal));
        Assert.Equal([3L], resumed.DiscardedFrom);
    }

    [Fact]
    public void TheDefaultConsoleWriterDropsColourCodesForARedirectedStream()
    {
        using var text = new StringWriter();
        using (var provider = new ReferenceFormatLoggerProvider(new DefaultConsoleLogging.AnsiFreeWriter(text)))
            provider.CreateLogger("test").LogInformation("(step=0000000) Train Loss mse: 0.1000");
        Assert.DoesNotContain('\u001b', text.ToString());
        Assert.Contains("(step=0000000) Train Loss mse: 0.1000", text.ToString(), StringComparison.Ordinal);
    }

    private sealed class ListSink : IMetricSink
    {
        public List<long> Steps { get; } = [];

        public List<long> DiscardedFrom { get; } = [];

        public ValueTask WriteAsync(StepMetrics metrics, CancellationToken cancellationToken = default)
        {
            Steps.Add(metrics.Step);
            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask DiscardFromStepAsync(long step, CancellationToken cancellationToken = default)
        {
            DiscardedFrom.Add(step);
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
