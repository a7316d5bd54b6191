using System.Globalization;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;
using Bagel.Data.Diagnostics;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Samples;
using Bagel.Data.Sources;
using Bagel.Tests.Data.Pipeline;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Checkpoints;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Options;

/// <summary>
/// The seed guide's data flags, each from a real command line through <see cref="DataWiring.ToPipelineOptions"/> into
/// a pipeline over tiny T2I / VLM data (and for <c>num_workers</c> on through the trainer), asserting what the batches,
/// the skip counters and the saved data status show.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // the num_workers run trains the tiny model
public sealed class SeedGuideDataOptionEffectTests
{
    [Theory]
    [InlineData("--num_worker", 1)] // the reference's launch line abbreviates the flag (argparse prefix)
    [InlineData("--num_workers", 2)]
    public async Task NumWorkersSetsTheWorkersBatchesComeFromAndTheSavedDataStatus(string flag, int workers)
    {
        using var fixture = new OptionEffectFixture();
        TrainingConfiguration config = fixture.Bind(flag, workers.ToString(CultureInfo.InvariantCulture));
        DataPipeline pipeline = await fixture.PipelineAsync(config, OptionEffectData.T2IAndVlm);
        List<int[]> workerIds = await OptionEffectFixture.TakeAsync(pipeline, 4, b => b.DataIndexes.Select(i => i.WorkerId).Distinct().ToArray());

        Assert.Equal(workers, DataWiring.ToPipelineOptions(config).NumWorkers);
        Assert.All(workerIds, ids => Assert.Single(ids)); // a batch comes from one worker ...
        Assert.Equal(Enumerable.Range(0, workers), workerIds.Select(ids => ids[0]).Distinct().Order()); // ... and every worker takes its turn

        using var model = new TinyPackedModel(seed: 1);
        OptionEffectRun run = await fixture.TrainAsync(config, model);
        Assert.Equal(workers, DataStatusFile.Read(Path.Combine(run.Result.LastCheckpoint, CheckpointLayout.DataStatusFileName)).NumWorkers);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task PrefetchFactorIsHowManyBatchesAWorkerBuildsAhead(int prefetch)
    {
        using var fixture = new OptionEffectFixture();
        // One worker, and a batch is full after one sample, so samples built = batches built.
        TrainingConfiguration config = fixture.Bind("--prefetch_factor", prefetch.ToString(CultureInfo.InvariantCulture),
            "--num_workers", "1", "--expected_num_tokens", "1");
        var counter = new CountingBuilder();
        DataPipeline pipeline = await fixture.PipelineAsync(config, OptionEffectData.T2I, counter.Wrap);

        await using IAsyncEnumerator<PackedBatch> batches = pipeline.ReadAsync(null, TestContext.Current.CancellationToken)
            .GetAsyncEnumerator(TestContext.Current.CancellationToken);
        Assert.True(await batches.MoveNextAsync());
        batches.Current.Dispose();

        // Taken 1, waiting in the channel prefetch_factor, and one more built that waits for room: prefetch_factor + 2.
        int expected = prefetch + 2;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (counter.Calls < expected && clock.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(20, TestContext.Current.CancellationToken);
        await Task.Delay(300, TestContext.Current.CancellationToken); // the worker is now blocked: the count stays
        Assert.Equal(expected, counter.Calls);
    }

    [Fact]
    public async Task MaxNumTokensPerSampleSkipsLongerSamplesAndCountsThem()
    {
        using var fixture = new OptionEffectFixture();
        DataPipeline unlimited = await fixture.PipelineAsync(fixture.Bind(), OptionEffectData.T2I);
        List<int> lengths = [.. (await OptionEffectFixture.TakeAsync(unlimited, 6, b => b.SampleLens)).SelectMany(l => l)];
        Assert.Equal(0, unlimited.Skips.Count(SkipReason.TooLong));

        int limit = (lengths.Min() + lengths.Max()) / 2;
        TrainingConfiguration config = fixture.Bind("--max_num_tokens_per_sample", limit.ToString(CultureInfo.InvariantCulture), "--total_steps", "2");
        DataPipeline limited = await fixture.PipelineAsync(config, OptionEffectData.T2I);
        List<int> kept = [.. (await OptionEffectFixture.TakeAsync(limited, 6, b => b.SampleLens)).SelectMany(l => l)];

        Assert.Contains(lengths, l => l > limit);
        Assert.All(kept, l => Assert.True(l <= limit, $"a sample of {l} tokens passed max_num_tokens_per_sample {limit}"));
        Assert.True(limited.Skips.Count(SkipReason.TooLong) > 0, "no sample was counted as too long");

        // The trainer's log line counts them too.
        using var model = new TinyPackedModel(seed: 1);
        using var logs = new CollectingLoggerProvider();
        await fixture.TrainAsync(config, model, configure: b => b.UseLogger(logs), data: OptionEffectData.T2I);
        string line = logs.Messages.Last(m => m.StartsWith("(step=", StringComparison.Ordinal));
        long logged = long.Parse(line[(line.IndexOf("Skipped Samples: ", StringComparison.Ordinal) + "Skipped Samples: ".Length)..].TrimEnd(',', ' '), CultureInfo.InvariantCulture);
        Assert.True(logged > 0, line);
    }

    [Fact]
    public async Task MaxNumTokensCapsEveryPackedBatch()
    {
        using var fixture = new OptionEffectFixture();
        string[] budgets = ["--expected_num_tokens", "100", "--max_num_tokens_per_sample", "100"];
        DataPipeline wide = await fixture.PipelineAsync(fixture.Bind([.. budgets, "--max_num_tokens", "400"]), OptionEffectData.T2IAndVlm);
        DataPipeline capped = await fixture.PipelineAsync(fixture.Bind([.. budgets, "--max_num_tokens", "100"]), OptionEffectData.T2IAndVlm);
        List<int> wideLengths = await OptionEffectFixture.TakeAsync(wide, 6, b => b.SequenceLength);
        List<int> cappedLengths = await OptionEffectFixture.TakeAsync(capped, 6, b => b.SequenceLength);

        Assert.Contains(wideLengths, l => l > 100); // the sample that reaches expected_num_tokens overshoots it
        Assert.All(cappedLengths, l => Assert.True(l <= 100, $"a batch of {l} tokens passed max_num_tokens 100"));
    }

    [Fact]
    public async Task ExpectedNumTokensIsTheSizeABatchIsFilledTo()
    {
        using var fixture = new OptionEffectFixture();
        async Task<List<int>> LengthsAsync(string expected) => await OptionEffectFixture.TakeAsync(
            await fixture.PipelineAsync(fixture.Bind("--expected_num_tokens", expected, "--max_buffer_size", "50"), OptionEffectData.T2IAndVlm), 8, b => b.SequenceLength);
        List<int> small = await LengthsAsync("40"), large = await LengthsAsync("120");

        double Median(List<int> values) => values.Order().ElementAt(values.Count / 2);
        Assert.True(Median(small) >= 40 && Median(large) >= 120, $"batches {string.Join(",", small)} / {string.Join(",", large)}");
        Assert.True(small.Average() < large.Average());
        Assert.True(small.Max() < 40 + 128, $"a batch of {small.Max()} went on after reaching expected_num_tokens 40");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    public async Task MaxBufferSizeBoundsTheSamplesHeldBackForALaterBatch(int bufferSize)
    {
        using var fixture = new OptionEffectFixture();
        DataPipeline pipeline = await fixture.PipelineAsync(fixture.Bind("--max_buffer_size", bufferSize.ToString(CultureInfo.InvariantCulture),
            "--num_workers", "1"), OptionEffectData.T2IAndVlm);
        List<int> buffered = await OptionEffectFixture.TakeAsync(pipeline, 8, _ => pipeline.CaptureStatus().PackerBuffer.Count);

        Assert.All(buffered, count => Assert.True(count <= bufferSize, $"{count} samples buffered with max_buffer_size {bufferSize}"));
        if (bufferSize == 0) Assert.True(pipeline.Skips.Count(SkipReason.PackerOverflow) > 0, "without a buffer, a sample that does not fit is dropped and counted");
        else Assert.Contains(buffered, count => count > 0);
    }

    [Fact]
    public async Task DataSeedChoosesTheOrderOfTheUnits()
    {
        using var fixture = new OptionEffectFixture();
        async Task<string> OrderAsync(string seed) => string.Join(";", await OptionEffectFixture.TakeAsync(
            await fixture.PipelineAsync(fixture.Bind("--data_seed", seed), OptionEffectData.T2IAndVlm), 4,
            b => string.Join(",", b.DataIndexes.Select(i => $"{i.Group}/{i.WorkerId}/{i.Position}"))));

        string first = await OrderAsync("1");
        Assert.Equal(first, await OrderAsync("1"));
        Assert.NotEqual(first, await OrderAsync("2"));
    }
}
