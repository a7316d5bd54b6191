using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Tests.Core.Batching;

namespace Bagel.Tests.Core.DataStatus;

public sealed class DataStatusTrackerTests
{
    [Fact]
    public void LastWritePerGroupAndWorkerWins()
    {
        var tracker = new DataStatusTracker(0);
        tracker.Record([
            new SampleDataIndex("t2i", 0, SourcePosition.T2I(0, 0, 1)),
            new SampleDataIndex("t2i", 1, SourcePosition.T2I(0, 0, 9)),
            new SampleDataIndex("t2i", 0, SourcePosition.T2I(0, 0, 2)),
            new SampleDataIndex("vlm", 0, SourcePosition.Vlm(4)),
        ]);

        RankDataStatus status = tracker.Snapshot();

        Assert.Equal(SourcePosition.T2I(0, 0, 2), status.Positions["t2i"][0]);
        Assert.Equal(SourcePosition.T2I(0, 0, 9), status.Positions["t2i"][1]);
        Assert.Equal(SourcePosition.Vlm(4), status.Positions["vlm"][0]);
    }

    [Fact]
    public void SnapshotIsUnaffectedByLaterRecordsAndCarriesPendingSamples()
    {
        var tracker = new DataStatusTracker(2);
        tracker.Record([new SampleDataIndex("vlm", 0, SourcePosition.Vlm(1))]);
        var buffered = new SampleDataIndex("vlm", 0, SourcePosition.Vlm(2));

        RankDataStatus snapshot = tracker.Snapshot(packerBuffer: [buffered]);
        tracker.Record([new SampleDataIndex("vlm", 0, SourcePosition.Vlm(3))]);

        Assert.Equal(2, snapshot.Rank);
        Assert.Equal(SourcePosition.Vlm(1), snapshot.Positions["vlm"][0]);
        Assert.Equal([buffered], snapshot.PackerBuffer);
    }

    [Fact]
    public void ResumedPositionsAreTheStartingPoint()
    {
        RankDataStatus resumed = DataStatusExamples.TwoRanks().Ranks[0];
        var tracker = new DataStatusTracker(0, resumed);
        tracker.Record([new SampleDataIndex("unified_edit", 1, SourcePosition.Edit(17, 6))]);

        RankDataStatus status = tracker.Snapshot();

        Assert.Equal(resumed.Positions["t2i_pretrain"][1], status.Positions["t2i_pretrain"][1]);
        Assert.Equal(SourcePosition.Edit(17, 6), status.Positions["unified_edit"][1]);
    }

    [Fact]
    public void RecordsABatchOfItsOwnRankOnly()
    {
        using var examples = new PackedBatchExamples();
        using PackedBatch batch = examples.ValidBuilder().Build();
        var tracker = new DataStatusTracker(0);
        tracker.Record(batch);
        Assert.Equal(SourcePosition.Vlm(12), tracker.Snapshot().Positions["vlm_sft"][1]);
        Assert.Throws<ArgumentException>(() => new DataStatusTracker(1).Record(batch));
    }
}
