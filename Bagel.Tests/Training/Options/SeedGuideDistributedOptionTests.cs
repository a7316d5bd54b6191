using System.Runtime.CompilerServices;
using Bagel.Core.Batching;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Options;

/// <summary>
/// The multi-process flags of the seed guide (sharding strategy, shard count, CPU offload): a reference command line
/// with their defaults or single-process values builds a trainer; any other value fails at <see cref="TrainerBuilder.Build"/>
/// with the clear message naming the flag.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // the tiny model seeds torch's global generator
public sealed class SeedGuideDistributedOptionTests
{
    private static async IAsyncEnumerable<PackedBatch> NoBatches([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        cancellationToken.ThrowIfCancellationRequested();
        yield break;
    }

    private static TrainerBuilder Builder(TinyPackedModel model, params string[] args) =>
        new TrainerBuilder().UseModel(model).UseData((_, ct) => NoBatches(ct)).UseOptions(ReferenceCommandLine.Bind(args));

    [Theory]
    [InlineData("sharding_strategy", new[] { "--sharding_strategy", "FULL_SHARD" })]
    [InlineData("sharding_strategy", new[] { "--sharding-strategy", "SHARD_GRAD_OP" })]
    [InlineData("num_shard", new[] { "--num_shard", "4" })]
    [InlineData("cpu_offload", new[] { "--cpu_offload" })]
    [InlineData("cpu_offload", new[] { "--cpu_offload", "True" })]
    public void ShardingStrategyNumShardAndCpuOffloadFailWithTheNeedsDistributedMessage(string flag, string[] args)
    {
        using var model = new TinyPackedModel(seed: 1);
        var error = Assert.Throws<InvalidTrainingOptionsException>(() => Builder(model, args).Build());

        string failure = Assert.Single(error.Failures);
        Assert.StartsWith($"'{flag}'", failure, StringComparison.Ordinal);
        Assert.Contains(TrainingOptionsValidator.NeedsDistributed, failure, StringComparison.Ordinal);
    }

    [Fact]
    public void ShardingStrategyNumShardAndCpuOffloadAcceptTheReferenceDefaultsAndSingleProcessValues()
    {
        using var model = new TinyPackedModel(seed: 1);
        using (Trainer defaults = Builder(model, "--sharding_strategy", "HYBRID_SHARD", "--num_shard", "8", "--cpu_offload", "False").Build())
            Assert.Equal(("HYBRID_SHARD", 8, false), (defaults.Configuration.Training.ShardingStrategy, defaults.Configuration.Training.NumShard, defaults.Configuration.Training.CpuOffload));
        using Trainer single = Builder(model, "--sharding_strategy", "NO_SHARD", "--num_shard", "1").Build();
        Assert.Equal(("NO_SHARD", 1), (single.Configuration.Training.ShardingStrategy, single.Configuration.Training.NumShard));
    }
}
