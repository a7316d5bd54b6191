using Bagel.Data.Diagnostics;
using Bagel.Data.Sources;
using Bagel.Tests.Infrastructure;
using static Bagel.Tests.Data.Sources.SourceTestHelpers;

namespace Bagel.Tests.Data.Sources;

public sealed class VlmJsonlSourceTests
{
    [Fact]
    public async Task LinesAreUnitsReadByOffsetWithLineNumbers()
    {
        using var dir = new TempDirectory();
        string jsonl = dir.File("conv.jsonl", "{\"id\": 0}\n\n{\"id\": 1, \"text\": \"héllo\"}\n{\"id\": 2}");
        var source = new VlmJsonlSource("vlm_sft", [jsonl], [dir.Path], [10]);

        Assert.Equal(3, source.UnitCount);
        var samples = await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(5), null, new DataSkipCounters(), TestContext.Current.CancellationToken), 4);

        var byLine = samples.Take(3).ToDictionary(s => ((VlmPayload)s.Payload).LineNumber, s => ((VlmPayload)s.Payload).Line);
        Assert.Equal("{\"id\": 1, \"text\": \"héllo\"}", byLine[3]);
        Assert.Equal("{\"id\": 2}", byLine[4]);
        Assert.Equal(samples[0].Index, samples[3].Index); // wrapped
        Assert.Contains("conv.jsonl line", samples[0].Origin, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ShuffleLinesHappensBeforeTruncation()
    {
        using var dir = new TempDirectory();
        string jsonl = dir.File("conv.jsonl", string.Join('\n', Enumerable.Range(0, 50).Select(i => $"{{\"id\": {i}}}")));
        var plain = new VlmJsonlSource("vlm_sft", [jsonl], [dir.Path], [5]);
        var shuffled = new VlmJsonlSource("vlm_sft", [jsonl], [dir.Path], [5], Seeded(0));
        Assert.Equal(5, shuffled.UnitCount);
        async Task<long[]> LinesOf(VlmJsonlSource source) =>
            [.. (await TakeAsync(source.ReadAsync(WorkerSlice.Single, Seeded(1), null, new DataSkipCounters(), TestContext.Current.CancellationToken), 5))
                .Select(s => ((VlmPayload)s.Payload).LineNumber).Order()];
        long[] firstFive = [1, 2, 3, 4, 5];
        Assert.Equal(firstFive, await LinesOf(plain));                    // truncation keeps the first lines
        long[] picked = await LinesOf(shuffled);
        Assert.NotEqual(firstFive, picked);                               // the seeded shuffle picked others
        long[] again = await LinesOf(new VlmJsonlSource("vlm_sft", [jsonl], [dir.Path], [5], Seeded(0)));
        Assert.Equal(picked, again);                                      // and reproducibly
    }
}
