using System.Security.Cryptography;
using System.Text;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Data.Config;
using Bagel.Data.Diagnostics;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Sources;
using Bagel.Tests.Infrastructure;
using TorchSharp;

namespace Bagel.Tests.Data.Pipeline;

public sealed class DataPipelineTests
{
    private static readonly PackingOptions SmallPacks = new()
    {
        ExpectedNumTokens = 100, MaxNumTokens = 104, MaxNumTokensPerSample = 104, PreferBufferBefore = 60, MaxBufferSize = 4,
        TextCondDropoutProb = 0.3, VitCondDropoutProb = 0.3, VaeCondDropoutProb = 0.3, MaxLatentSize = 4, MaxNumPatchPerSide = 70,
    };

    /// <summary>Everything a batch carries that resume must reproduce: ids, positions, pixels, timesteps, dropouts (via splits).</summary>
    internal static string Fingerprint(PackedBatch batch)
    {
        var text = new StringBuilder();
        text.Append(string.Join(',', batch.SplitLens)).Append('|').Append(string.Join(',', batch.AttnModes)).Append('|');
        text.Append(string.Join(',', batch.PackedTextIds.data<long>().ToArray())).Append('|');
        text.Append(string.Join(',', batch.PackedPositionIds.data<long>().ToArray())).Append('|');
        text.Append(string.Join(';', batch.DataIndexes.Select(d => $"{d.Group}/{d.WorkerId}/{d.Position}"))).Append('|');
        if (batch.Vae is { } vae)
        {
            text.Append(Convert.ToHexString(SHA256.HashData(vae.PaddedImages.bytes))).Append('|');
            text.Append(string.Join(',', vae.PackedTimesteps.data<float>().ToArray().Select(t => t.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))).Append('|');
        }
        if (batch.Vit is { } vit) text.Append(Convert.ToHexString(SHA256.HashData(vit.PackedVitTokens.bytes))).Append('|');
        if (batch.TextLoss is { } loss) text.Append(string.Join(',', loss.PackedLabelIds.data<long>().ToArray()));
        return text.ToString();
    }

    private static async Task<List<string>> TakeAsync(DataPipeline pipeline, int count, RankDataStatus? resume = null)
    {
        var result = new List<string>();
        await foreach (PackedBatch batch in pipeline.ReadAsync(resume, TestContext.Current.CancellationToken))
        {
            using (batch) result.Add(Fingerprint(batch));
            if (result.Count == count) break;
        }
        return result;
    }

    private static async Task<DataGroup> GroupAsync(PipelineFixture fixture, string kind, DataSkipCounters skips) => kind switch
    {
        "t2i" => new DataGroup("t2i_pretrain", 1, false, new T2IParquetSource("t2i_pretrain", [await fixture.WriteT2IAsync(4, 6, 3)], [4]), fixture.Builder(skips, PipelineFixture.Vae)),
        "edit" => new DataGroup("unified_edit", 1, false,
            await EditParquetSource.CreateAsync("unified_edit", [await fixture.WriteEditAsync(2, 8, 2)], [2], null, cancellationToken: TestContext.Current.CancellationToken),
            fixture.Builder(skips, PipelineFixture.Vae, PipelineFixture.Vit)),
        _ => VlmGroup(fixture, skips),
    };

    private static DataGroup VlmGroup(PipelineFixture fixture, DataSkipCounters skips)
    {
        var (jsonl, images) = fixture.WriteVlm(16);
        return new DataGroup("vlm_sft", 1, false, new VlmJsonlSource("vlm_sft", [jsonl], [images], [16]), fixture.Builder(skips, PipelineFixture.Vit));
    }

    [Theory]
    [InlineData("t2i")]
    [InlineData("edit")]
    [InlineData("vlm")]
    public async Task ResumeFromSavedStatusContinuesWithExactlyTheNextBatches(string kind)
    {
        using var fixture = new PipelineFixture();
        var skips = new DataSkipCounters();
        DataGroup group = await GroupAsync(fixture, kind, skips);
        var options = new DataPipelineOptions { NumWorkers = 2, PrefetchFactor = 2, DataSeed = 7, Packing = SmallPacks };
        const int total = 12;
        List<string> straight = await TakeAsync(fixture.Pipeline([group], options, skips), total);

        // Find a cut where a packer buffer is non-empty (the reference loses those samples on resume).
        for (int cut = 2; cut < total - 2; cut++)
        {
            var first = fixture.Pipeline([group], options, skips);
            List<string> head = await TakeAsync(first, cut);
            RankDataStatus status = first.CaptureStatus();
            if (status.PackerBuffer.Count == 0) continue;

            // Through the on-disk format, as a checkpoint would store it.
            string file = Path.Combine(fixture.Directory.Path, $"data_status_{cut}.json");
            DataStatusFile.Write(file, new DataStatusDocument { WorldSize = 1, NumWorkers = 2, Ranks = [status] });
            RankDataStatus loaded = DataStatusFile.Read(file).ForResume(0, 1, 2)!;
            Assert.Contains(0, loaded.WorkerRngStates.Keys);
            Assert.Contains(1, loaded.WorkerRngStates.Keys);
            Assert.Equal([0, 1], loaded.Positions[group.Name].Keys.Order());

            List<string> tail = await TakeAsync(fixture.Pipeline([group], options, skips), total - cut, loaded);
            Assert.Equal(straight, head.Concat(tail));
            return;
        }
        Assert.Fail("no cut had a non-empty packer buffer; the test data does not exercise buffered samples");
    }

    [Fact]
    public async Task SameSeedGivesTheSameBatchesWhateverTheTiming()
    {
        using var fixture = new PipelineFixture();
        var skips = new DataSkipCounters();
        DataGroup group = await GroupAsync(fixture, "t2i", skips);
        var two = new DataPipelineOptions { NumWorkers = 2, PrefetchFactor = 1, DataSeed = 3, Packing = SmallPacks };
        Assert.Equal(await TakeAsync(fixture.Pipeline([group], two, skips), 6), await TakeAsync(fixture.Pipeline([group], two with { PrefetchFactor = 3 }, skips), 6));
        var other = await TakeAsync(fixture.Pipeline([group], two with { DataSeed = 4 }, skips), 6);
        Assert.NotEqual(await TakeAsync(fixture.Pipeline([group], two, skips), 6), other);
    }

    [Fact]
    public async Task CancellationStopsEveryWorkerWithoutDeadlock()
    {
        using var fixture = new PipelineFixture();
        var skips = new DataSkipCounters();
        DataGroup group = await GroupAsync(fixture, "t2i", skips);
        var pipeline = fixture.Pipeline([group], new DataPipelineOptions { NumWorkers = 2, PrefetchFactor = 1, Packing = SmallPacks }, skips);
        using var cancel = new CancellationTokenSource();
        int seen = 0;
        var run = Task.Run(async () =>
        {
            await foreach (PackedBatch batch in pipeline.ReadAsync(null, cancel.Token))
            {
                batch.Dispose();
                if (++seen == 2) await cancel.CancelAsync();
            }
        }, TestContext.Current.CancellationToken);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken));
        Assert.Equal(2, seen);
    }

    [Fact]
    public async Task AWorkersExceptionSurfacesNamingTheWorker()
    {
        using var fixture = new PipelineFixture();
        var skips = new DataSkipCounters();
        string dir = await fixture.WriteT2IAsync(2, 2, 2, _ => (null, "{\"a\": \"b\"}")); // every image null: the source yields nothing valid
        var group = new DataGroup("t2i_pretrain", 1, false, new T2IParquetSource("t2i_pretrain", [dir], [2]), fixture.Builder(skips, PipelineFixture.Vae));
        var pipeline = fixture.Pipeline([group], new DataPipelineOptions { NumWorkers = 2, Packing = SmallPacks }, skips);
        var ex = await Assert.ThrowsAsync<DataPipelineException>(() => TakeAsync(pipeline, 1));
        Assert.Contains("Data worker 0 of rank 0 failed", ex.Message, StringComparison.Ordinal);
    }
}
