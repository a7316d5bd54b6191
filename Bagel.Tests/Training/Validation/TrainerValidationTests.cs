using System.Text.Json;
using System.Text.RegularExpressions;
using Bagel.Core.Metrics;
using Bagel.Tests.Data.Example;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using Bagel.Training.Metrics;
using Bagel.Training.Options;
using Bagel.Training.Validation;

namespace Bagel.Tests.Training.Validation;

/// <summary>The trainer evaluates the validation set on its schedule without changing the training.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds and draws from torch's global generator
public sealed partial class TrainerValidationTests(ExampleDatasetFixture data) : IClassFixture<ExampleDatasetFixture>
{
    private sealed record Run(TrainingRunResult Result, List<TrainingStepReport> Steps, List<ValidationReport> Evaluations);

    private static async Task<Run> RunAsync(LoopFixture fixture, ITrainableModel model, TrainingConfiguration configuration, ValidationSet? set,
        int? everySteps = null, Action<TrainerBuilder>? configure = null, long? stopAfterStep = null)
    {
        var steps = new List<TrainingStepReport>();
        var evaluations = new List<ValidationReport>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var builder = new TrainerBuilder().UseModel(model).UseData(await fixture.PipelineAsync()).UseOptions(configuration).OnStep(steps.Add)
            .OnStep(s => { if (s.Step == stopAfterStep) stop.Cancel(); });
        if (set is not null) builder.UseValidation(set, everySteps).OnEval(evaluations.Add);
        configure?.Invoke(builder);
        using Trainer trainer = builder.Build();
        TrainingRunResult result = await trainer.RunAsync(stop.Token);
        return new Run(result, steps, evaluations);
    }

    [Theory]
    [NeedsSharedData("tokenizer/qwen2.5")]
    [InlineData(3, 1000, 7, new long[] { 3, 6, 7 })] // every 3 steps, then the end
    [InlineData(0, 2, 5, new long[] { 2, 4, 5 })] // 0: at every checkpoint (save_every), then the end
    [InlineData(2, 1000, 4, new long[] { 2, 4 })] // the end coincides with a scheduled evaluation: once
    public async Task EvaluatesAtTheConfiguredStepsAndAtTheEnd(int validateEvery, int saveEvery, int totalSteps, long[] expected)
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 1);
        using ValidationSet set = await ValidationTestData.CreateAsync(data, batchesPerGroup: 1);
        using var logs = new CollectingLoggerProvider();
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps, saveEvery);
        configuration.Training.ValidateEvery = validateEvery;

        Run run = await RunAsync(fixture, model, configuration, set, configure: b => b.UseLogger(logs));

        Assert.Equal(expected, run.Evaluations.Select(e => e.Step));
        Assert.All(run.Evaluations, e => Assert.Equal(set.Groups.Select(g => g.Name), e.Groups.Select(g => g.Group)));
        List<string> lines = [.. logs.Messages.Where(m => m.Contains(" Validation ", StringComparison.Ordinal))];
        Assert.Equal(expected.Length * set.Groups.Count, lines.Count);
        Assert.All(lines, l => Assert.Matches(ValidationLine(), l));
        Assert.Equal($"(step={expected[0]:D7}) Validation t2i_pretrain mse: {run.Evaluations[0].Groups[0].Mse:F4}, ce: 0.0000", lines[0]);
    }

    [Fact]
    [NeedsSharedData("tokenizer/qwen2.5")]
    public async Task TrainingIsBitIdenticalWithAndWithoutValidation()
    {
        using var fixture = new LoopFixture();
        using ValidationSet set = await ValidationTestData.CreateAsync(data, batchesPerGroup: 2);
        using var plainInner = new TinyPackedModel(seed: 1);
        using var validatedInner = new TinyPackedModel(seed: 1);
        var validatedModel = new NoisyTinyModel(validatedInner);

        Run plain = await RunAsync(fixture, new NoisyTinyModel(plainInner), fixture.Configuration("plain", totalSteps: 8), set: null);
        Run validated = await RunAsync(fixture, validatedModel, fixture.Configuration("validated", totalSteps: 8), set, everySteps: 2);

        Assert.Equal([2L, 4, 6, 8], validated.Evaluations.Select(e => e.Step));
        Assert.Equal(plain.Steps.Select(Figures), validated.Steps.Select(Figures));
        foreach (var ((name, a), (_, b)) in plainInner.Module.named_parameters().Zip(validatedInner.Module.named_parameters()))
            Assert.True(a.bytes.SequenceEqual(b.bytes), $"parameter {name} differs");
        // Training forwards ran in training mode with gradients, evaluation forwards in eval mode without.
        Assert.Equal(8, validatedModel.Calls.Count(c => c.Training && c.GradEnabled));
        Assert.Equal(4 * set.BatchCount, validatedModel.Calls.Count(c => !c.Training && !c.GradEnabled));
        // The weights change between evaluations, so the validation losses do too.
        Assert.NotEqual(validated.Evaluations[0].Groups[0].Mse, validated.Evaluations[^1].Groups[0].Mse);
    }

    [Fact]
    [NeedsSharedData("tokenizer/qwen2.5")]
    public async Task AResumedRunWithValidationMatchesTheStraightRunInTrainingAndValidation()
    {
        using var fixture = new LoopFixture();
        using ValidationSet set = await ValidationTestData.CreateAsync(data, batchesPerGroup: 1);
        TrainingConfiguration Configuration(string run) => fixture.Configuration(run, totalSteps: 8, autoResume: true);
        using var straightInner = new TinyPackedModel(seed: 1);
        Run straight = await RunAsync(fixture, new NoisyTinyModel(straightInner), Configuration("straight"), set, everySteps: 2);

        Run head;
        using (var firstInner = new TinyPackedModel(seed: 1))
            head = await RunAsync(fixture, new NoisyTinyModel(firstInner), Configuration("split"), set, everySteps: 2, stopAfterStep: 4);
        using var resumedInner = new TinyPackedModel(seed: 42);
        Run tail = await RunAsync(fixture, new NoisyTinyModel(resumedInner), Configuration("split"), set, everySteps: 2);

        Assert.True(head.Result.Cancelled);
        Assert.Equal(5, tail.Result.StartStep);
        Assert.Equal([2L, 4], head.Evaluations.Select(e => e.Step)); // a stop request skips the end-of-run evaluation
        Assert.Equal([6L, 8], tail.Evaluations.Select(e => e.Step));
        Assert.Equal(straight.Steps.Select(Figures), head.Steps.Concat(tail.Steps).Select(Figures));
        Assert.Equal(straight.Evaluations.Select(e => e.Groups), head.Evaluations.Concat(tail.Evaluations).Select(e => e.Groups));
    }

    [Fact]
    [NeedsSharedData("tokenizer/qwen2.5")]
    public async Task ValidationLossesReachTheMetricSinksUnderTheDocumentedNames()
    {
        using var fixture = new LoopFixture();
        using var model = new TinyPackedModel(seed: 2);
        using ValidationSet set = await ValidationTestData.CreateAsync(data, batchesPerGroup: 1);
        string jsonl = Path.Combine(fixture.Root, "metrics.jsonl");
        Run run;
        await using (var sink = new JsonlMetricSink(jsonl))
            run = await RunAsync(fixture, model, fixture.Configuration("ckpt", totalSteps: 4), set, everySteps: 2, b => b.AddMetricSink(sink));

        List<JsonElement> records = [.. (await File.ReadAllLinesAsync(jsonl, TestContext.Current.CancellationToken)).Select(l => JsonDocument.Parse(l).RootElement)];
        List<JsonElement> validation = [.. records.Where(r => r.EnumerateObject().Any(p => p.Name.StartsWith(BagelMetricNames.ValidationPrefix, StringComparison.Ordinal)))];
        Assert.Equal(4 + 2, records.Count); // a record per logged step and per evaluation
        Assert.Equal([2L, 4], validation.Select(r => r.GetProperty("step").GetInt64()));
        foreach (var (record, report) in validation.Zip(run.Evaluations))
        {
            Assert.Equal(["step", "time", "val/t2i_pretrain/mse", "val/unified_edit/mse", "val/vlm_sft/ce"], record.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
            foreach (GroupValidationLoss group in report.Groups)
            {
                if (group.HasMse) Assert.Equal(group.Mse, record.GetProperty(BagelMetricNames.ValidationLoss(group.Group, ReferenceMetricNames.Mse)).GetDouble());
                if (group.HasCe) Assert.Equal(group.Ce, record.GetProperty(BagelMetricNames.ValidationLoss(group.Group, ReferenceMetricNames.Ce)).GetDouble());
            }
        }
    }

    [Fact]
    public void TheBuilderReportsEveryBadValidationValueAtOnce()
    {
        using var model = new TinyPackedModel(seed: 3);
        TrainingConfiguration configuration = TrainingConfiguration.Defaults();
        configuration.Training.ValidationBatches = 0;
        using var empty = new ValidationSet([]);

        var failures = Assert.Throws<InvalidTrainingOptionsException>(() => new TrainerBuilder().UseModel(model).UseOptions(configuration)
            .UseData((_, _) => AsyncEnumerable.Empty<Bagel.Core.Batching.PackedBatch>()).UseValidation(empty, everySteps: -1).Build()).Failures;

        Assert.Equal(3, failures.Count);
        Assert.Contains(failures, f => f.Contains("'validation_batches' is 0", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("every -1 steps", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("no group", StringComparison.Ordinal));

        configuration.Training.ValidationBatches = 1;
        configuration.Training.ValidateEvery = -2;
        var fromOptions = Assert.Throws<InvalidTrainingOptionsException>(() => new TrainerBuilder().UseModel(model).UseOptions(configuration)
            .UseData((_, _) => AsyncEnumerable.Empty<Bagel.Core.Batching.PackedBatch>()).OnEval(_ => { }).Build()).Failures;
        Assert.Equal(2, fromOptions.Count);
        Assert.Contains(fromOptions, f => f.Contains("'validate_every' is -2", StringComparison.Ordinal));
        Assert.Contains(fromOptions, f => f.Contains("no validation set", StringComparison.Ordinal));
    }

    private static (double Mse, double Ce, double Total, double GradNorm, double Lr) Figures(TrainingStepReport s) => (s.Mse, s.Ce, s.TotalLoss, s.GradNorm, s.LearningRate);

    [GeneratedRegex(@"^\(step=\d{7}\) Validation (t2i_pretrain|unified_edit|vlm_sft) mse: \d+\.\d{4}, ce: \d+\.\d{4}$")]
    private static partial Regex ValidationLine();
}
