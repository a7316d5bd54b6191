using Bagel.Core.DataStatus;

namespace Bagel.Tests.Core.DataStatus;

public sealed class DataStatusDocumentTests
{
    [Fact]
    public void SameSizesResumeExactly()
    {
        DataStatusDocument document = DataStatusExamples.TwoRanks();
        Assert.Same(document.Ranks[1], document.ForResume(1, worldSize: 2, numWorkers: 2));
    }

    [Fact]
    public void ChangedSizesAreRefusedByDefault()
    {
        var ex = Assert.Throws<DataStatusMismatchException>(() => DataStatusExamples.TwoRanks().ForResume(0, worldSize: 2, numWorkers: 1));
        Assert.Contains("world size 2 and 2 worker(s)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("this run has 2 and 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InexactFallbackKeepsSurvivingPositionsOnly()
    {
        DataStatusDocument document = DataStatusExamples.TwoRanks();

        RankDataStatus? rank0 = document.ForResume(0, worldSize: 3, numWorkers: 1, allowInexact: true);
        RankDataStatus? rank2 = document.ForResume(2, worldSize: 3, numWorkers: 1, allowInexact: true);

        Assert.NotNull(rank0);
        Assert.Equal([0], rank0.Positions["t2i_pretrain"].Keys);
        Assert.Empty(rank0.Positions["unified_edit"]);
        Assert.Empty(rank0.PackerBuffer);
        Assert.Empty(rank0.RngStates);
        Assert.Null(rank0.TorchGlobalRngState);
        Assert.Null(rank2);
    }

    [Fact]
    public void PositionsCheckTheirIndexCount()
    {
        Assert.Throws<ArgumentException>(() => new SourcePosition(SourcePositionKind.EditParquet, [1, 2, 3]));
        Assert.Throws<ArgumentException>(() => new SourcePosition(SourcePositionKind.Custom, []));
        Assert.Throws<ArgumentException>(() => SourcePosition.Vlm(-1));
        Assert.Equal(SourcePosition.Edit(3, 4), new SourcePosition(SourcePositionKind.EditParquet, [3, 4]));
    }
}
