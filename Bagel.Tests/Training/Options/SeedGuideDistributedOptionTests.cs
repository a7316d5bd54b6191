using System.Runtime.CompilerServices;
using Bagel.Core.Batching;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Options;

/// <summary>
/// The multi-process flags of the seed guide (sharding strategy, shard count, CPU offload): a reference command line
/// with their defaults, single-process values or the sharding strategies Bagel.NET runs builds a trainer; what is not
/// built (FULL_SHARD, CPU offload without a sharding strategy) fails at <see cref="TrainerBuilder.Build"/> with the clear
/// message naming the flag.
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
    [InlineData("num_replicate", new[] { "--num_replicate", "2" })]
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

    [Theory]
    [InlineData("SHARD_GRAD_OP", "4", "False")]
    [InlineData("OPTIMIZER_SHARD", "8", "True")]
    [InlineData("_HYBRID_SHARD_ZERO2", "1", "True")]
    [InlineData("FULL_SHARD", "8", "True")]
    public void ShardingStrategyNumShardAndCpuOffloadBuildTheShardedModes(string strategy, string numShard, string cpuOffload)
    {
        using var model = new TinyPackedModel(seed: 1);
        using Trainer trainer = Builder(model, "--sharding_strategy", strategy, "--num_shard", numShard, "--cpu_offload", cpuOffload).Build();
        Assert.NotNull(trainer.ShardedCheckpoint); // one process: the shard is the whole model
        Assert.Throws<InvalidOperationException>(() => trainer.EmaModule); // no rank holds a whole EMA module
    }
}
