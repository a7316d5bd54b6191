using Bagel.Data.Diagnostics;
using Bagel.Tests.Data.Pipeline.BadInput;

namespace Bagel.Tests.Data.Pipeline;

public sealed class DataSkipCountersTests
{
    [Fact]
    public void ARecordSkippedOnEveryPassIsWarnedAboutAndCountedOnceWithItsRepeatsApart()
    {
        var log = new CapturingLogger();
        var skips = new DataSkipCounters(log);
        for (int pass = 0; pass < 4; pass++)
        {
            skips.Skip("t2i_pretrain", SkipReason.CorruptImage, "a.parquet row 3", "not an image");
            skips.Skip("t2i_pretrain", SkipReason.CorruptImage, "a.parquet row 7", "not an image");
            skips.RecordPass("t2i_pretrain", 0, 0);
        }

        Assert.Equal(2, skips.Total);
        Assert.Equal(2, skips.Count(SkipReason.CorruptImage, "t2i_pretrain"));
        Assert.Equal(6, skips.RepeatedSkips);
        Assert.Equal(4, skips.Passes("t2i_pretrain"));
        Assert.Equal(2, log.Messages.Count(m => m.StartsWith("Warning:", StringComparison.Ordinal)));
        Assert.DoesNotContain(log.Messages, m => m.StartsWith("Information:", StringComparison.Ordinal)); // passes are debug lines
        Assert.Equal(4, log.Messages.Count(m => m.StartsWith("Debug:", StringComparison.Ordinal) && m.Contains("repeat in rank-0 worker-0", StringComparison.Ordinal)));
    }

    [Fact]
    public void ALoggerIsAttachedOnlyWhenNoneWasGiven()
    {
        var attached = new CapturingLogger();
        var withoutLogger = new DataSkipCounters();
        Assert.True(withoutLogger.AttachLogger(attached));
        withoutLogger.Skip("vlm_sft", SkipReason.MalformedJsonLine, "conv.jsonl line 2", "not JSON");
        Assert.Single(attached.Messages);

        var own = new CapturingLogger();
        var withLogger = new DataSkipCounters(own);
        Assert.False(withLogger.AttachLogger(attached));
        withLogger.Skip("vlm_sft", SkipReason.MalformedJsonLine, "conv.jsonl line 2", "not JSON");
        Assert.Single(own.Messages);
        Assert.Single(attached.Messages);
    }
}
