using System.Text.Json;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Checkpoints;
using Bagel.Training.Metrics;
using Bagel.Training.Recipes;

namespace Bagel.Tests.Training.Recipes;

/// <summary>The tiny preset (what Bagel.Train runs without arguments): no files beside the clone, resume on rerun, stop codes.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class TinyPresetTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(TinyPresetOptions options, CancellationToken token)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = await TinyPreset.RunAsync(options, stdout, stderr, token);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private static List<long> MetricSteps(string results) =>
        [.. File.ReadAllLines(Path.Combine(results, JsonlMetricSink.DefaultFileName)).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64())];

    [Fact]
    public async Task AStoppedRunSaysSoAndARerunResumesThenReportsItIsComplete()
    {
        using var folder = new TempDirectory();
        string results = Path.Combine(folder.Path, "tiny");
        var options = new TinyPresetOptions { ResultsDir = results, TotalSteps = 5, SaveEvery = 2, KeepLastCheckpoints = 1 };

        // 1. Stopped (as by Ctrl+C) after the step with index 2: a final checkpoint of 3 steps, exit 130, no "Done".
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        (int exit, string stdout, string stderr) = await RunAsync(options with { OnStep = r => { if (r.Step == 2) stop.Cancel(); } }, stop.Token);
        Assert.True(exit == TrainCommand.ExitInterrupted, stderr);
        Assert.Contains("Interrupted after 3 of 5 steps", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Done", stderr, StringComparison.Ordinal);
        Assert.StartsWith("(step=0000000) Train Loss mse: ", stdout, StringComparison.Ordinal);
        Assert.Equal([3], CheckpointCatalog.List(Path.Combine(results, "checkpoints")).Select(c => c.CompletedSteps)); // keeps only the last
        Assert.Equal([0, 1, 2], MetricSteps(results));

        // 2. The same call resumes from step 3 with the same data and tokenizer and finishes.
        (exit, stdout, stderr) = await RunAsync(options, Ct);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        Assert.Contains("Resuming the tiny preset from", stderr, StringComparison.Ordinal);
        Assert.Contains("Using the example data already in", stderr, StringComparison.Ordinal);
        Assert.Contains("Training from step 3 to total_steps 5.", stderr, StringComparison.Ordinal);
        Assert.StartsWith("(step=0000003) ", stdout, StringComparison.Ordinal);
        Assert.Equal([0, 1, 2, 3, 4], MetricSteps(results));

        // 3. Once more: already complete, nothing trained, nothing changed.
        (exit, stdout, stderr) = await RunAsync(options, Ct);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        Assert.Contains("already complete: 5 of 5 steps", stderr, StringComparison.Ordinal);
        Assert.Empty(stdout);
        Assert.Equal([0, 1, 2, 3, 4], MetricSteps(results));

        // 4. --fresh says what it deletes and trains from step 0.
        (exit, stdout, stderr) = await RunAsync(options with { TotalSteps = 1, Fresh = true }, Ct);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);
        Assert.Contains($"--fresh: deleting {results} and everything in it (1 checkpoint(s), the last at step 5", stderr, StringComparison.Ordinal);
        Assert.Equal([0], MetricSteps(results));
        Assert.DoesNotContain('\u001b', await File.ReadAllTextAsync(Path.Combine(results, "log.txt"), Ct)); // no colour codes in the file
    }

    [Fact]
    public async Task RunInfoRecordsTheRunThatHappenedAndTheModelIsSmall()
    {
        using var folder = new TempDirectory();
        string results = Path.Combine(folder.Path, "tiny");
        (int exit, _, string stderr) = await RunAsync(new TinyPresetOptions { ResultsDir = results, TotalSteps = 1 }, Ct);
        Assert.True(exit == TrainCommand.ExitSuccess, stderr);

        RunInfo info = RunInfo.Read(Path.Combine(results, "checkpoints", "0000001", CheckpointLayout.RunInfoFileName));
        Assert.Equal(Path.Combine(results, TinyPreset.DataFolderName, "example.yaml"), info.Configuration.Data.DatasetConfigFile);
        Assert.Equal(TinyPreset.MaxLatentSize, info.Configuration.Model.MaxLatentSize);
        Assert.Equal(TinyPreset.BuiltInCode, info.Configuration.Model.ModelPath);
        Assert.Equal(1, info.Configuration.Training.TotalSteps);
        Assert.Equal(384, info.Configuration.Training.ExpectedNumTokens);
        Assert.Equal(1, info.Configuration.Data.NumWorkers);
        Assert.NotNull(info.Model);
        Assert.Equal("64", info.Model["llm.hidden_size"]);
        int vocabulary = int.Parse(info.Model["llm.vocab_size"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(vocabulary, 260, 1024 + 4); // the preset's own byte-level BPE, not the 151,665 ids of Qwen2.5
        Assert.InRange(long.Parse(info.Model["trainable_parameters"], System.Globalization.CultureInfo.InvariantCulture), 1, 2_000_000);
        Assert.True(File.Exists(Path.Combine(results, TinyPreset.TokenizerFolderName, "vocab.json")));
    }
}
