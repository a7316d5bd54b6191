using Bagel.Data.Diagnostics;
using Bagel.Data.Pipeline;
using Bagel.Training.Loop;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Loop;

[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class TrainerDataLoggingTests
{
    [Fact]
    public async Task UseLoggerReachesThePipelineAndEachBadRecordIsWarnedAboutOnceOverManyPasses()
    {
        using var fixture = new LoopFixture();
        DataPipeline pipeline = await fixture.PipelineWithBadImagesAsync(0, 2, 4);
        var logs = new CollectingLoggerProvider();
        TrainingConfiguration configuration = fixture.Configuration("ckpt", totalSteps: 12);
        using var model = new TinyPackedModel(seed: 1);
        using Trainer trainer = new TrainerBuilder().UseModel(model).UseData(pipeline).UseOptions(configuration).UseLogger(logs).UseDefaultMetricSinks(false).Build();

        await trainer.RunAsync(TestContext.Current.CancellationToken);

        Assert.True(pipeline.Skips.Passes("t2i_pretrain") >= 2, $"the T2I data was read {pipeline.Skips.Passes("t2i_pretrain")} time(s); the test needs repeats");
        Assert.True(pipeline.Skips.RepeatedSkips > 0);
        Assert.Equal(3, pipeline.Skips.Count(SkipReason.CorruptImage)); // three bad rows, read again on every pass
        string[] warnings = [.. logs.Messages.Where(m => m.StartsWith("Skipped a ", StringComparison.Ordinal) && !m.Contains("again on a later pass", StringComparison.Ordinal))];
        Assert.Equal(3, warnings.Count(m => m.Contains("(CorruptImage)", StringComparison.Ordinal)));
        Assert.Equal(warnings.Length, warnings.Distinct().Count());
        Assert.Equal(pipeline.Skips.Total, warnings.Length); // one warning per counted skip
    }
}
