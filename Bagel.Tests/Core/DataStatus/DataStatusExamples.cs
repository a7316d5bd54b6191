using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;

namespace Bagel.Tests.Core.DataStatus;

internal static class DataStatusExamples
{
    /// <summary>Two ranks, two workers, three groups of each position kind, pending samples and RNG states.</summary>
    public static DataStatusDocument TwoRanks()
    {
        var dropout = new SeededRandomSource(SeedDerivation.Derive(42, RandomPurposes.ConditionDropout, 0, 1));
        dropout.NextUniform();
        RandomSourceState dropoutState = dropout.GetState();
        dropout.Dispose();
        return new DataStatusDocument
        {
            WorldSize = 2,
            NumWorkers = 2,
            Step = 1500,
            Ranks =
            [
                new RankDataStatus
                {
                    Rank = 0,
                    Positions = new Dictionary<string, IReadOnlyDictionary<int, SourcePosition>>
                    {
                        ["t2i_pretrain"] = new Dictionary<int, SourcePosition> { [0] = SourcePosition.T2I(1, 0, 41), [1] = SourcePosition.T2I(0, 2, 3) },
                        ["unified_edit"] = new Dictionary<int, SourcePosition> { [1] = SourcePosition.Edit(17, 5) },
                    },
                    PackerBuffer = [new SampleDataIndex("t2i_pretrain", 0, SourcePosition.T2I(1, 0, 42))],
                    Prefetched = [new SampleDataIndex("unified_edit", 1, SourcePosition.Edit(17, 6))],
                    RngStates = new Dictionary<string, RandomSourceState> { [RandomPurposes.FlowNoise] = new SeededRandomSource(9).GetState() },
                    WorkerRngStates = new Dictionary<int, IReadOnlyDictionary<string, RandomSourceState>>
                    {
                        [1] = new Dictionary<string, RandomSourceState> { [RandomPurposes.ConditionDropout] = dropoutState },
                    },
                    TorchGlobalRngState = [1, 2, 3, 250],
                },
                new RankDataStatus
                {
                    Rank = 1,
                    Positions = new Dictionary<string, IReadOnlyDictionary<int, SourcePosition>>
                    {
                        ["vlm_sft"] = new Dictionary<int, SourcePosition> { [0] = SourcePosition.Vlm(99) },
                    },
                },
            ],
        };
    }
}
