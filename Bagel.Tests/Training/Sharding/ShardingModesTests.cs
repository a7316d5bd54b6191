using Bagel.Tests.Training.Distributed;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Bagel.Training.Sharding;

namespace Bagel.Tests.Training.Sharding;

/// <summary>Which mode the reference's <c>sharding_strategy</c> and <c>num_shard</c> choose for a world size.</summary>
public sealed class ShardingModesTests
{
    [Theory]
    [InlineData("NO_SHARD", 8, 4, ShardingMode.None, 4)]
    [InlineData("HYBRID_SHARD", 8, 1, ShardingMode.None, 1)]         // one process: nothing to shard
    [InlineData("HYBRID_SHARD", 8, 2, ShardingMode.Parameters, 2)]   // num_shard covers the world: one group
    [InlineData("HYBRID_SHARD", 2, 4, ShardingMode.Parameters, 2)]   // two groups of two, replicated
    [InlineData("FULL_SHARD", 2, 4, ShardingMode.Parameters, 4)]     // FULL_SHARD ignores num_shard, as FSDP does
    [InlineData("SHARD_GRAD_OP", 8, 2, ShardingMode.Gradients, 2)]
    [InlineData("OPTIMIZER_SHARD", 8, 2, ShardingMode.OptimizerState, 2)]
    [InlineData("_HYBRID_SHARD_ZERO2", 2, 4, ShardingMode.Gradients, 2)]
    public void TheFlagsChooseTheModeAndTheShardGroupSize(string strategy, int numShard, int world, ShardingMode mode, int shardRanks)
    {
        var options = new TrainingOptions { ShardingStrategy = strategy, NumShard = numShard };
        (ShardingMode chosen, int ranks, string description) = ShardingModes.FromFlags(options, world);
        Assert.Equal((mode, shardRanks), (chosen, ranks));
        Assert.Contains(strategy, description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("HYBRID_SHARD")]
    [InlineData("_HYBRID_SHARD_ZERO2")]
    public void ANumShardThatDoesNotDivideTheWorldIsRefused(string strategy)
    {
        var error = Assert.Throws<NotSupportedException>(() => ShardingModes.FromFlags(new TrainingOptions { ShardingStrategy = strategy, NumShard = 4 }, 6));
        Assert.Contains("num_shard 4 does not divide the world size 6", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheDefaultHybridShardKeepsTheWholeStateWhenTheRunCannotShardIt()
    {
        // Two ranks, the reference's default strategy, custom parameter groups (which sharded training refuses by name):
        // the session runs plain data parallelism instead of failing. No collective runs while it is built.
        using var model = new TinyPackedModel(seed: 2);
        using var folder = new Bagel.Tests.Infrastructure.TempDirectory("bagel-hybrid-default-");
        TrainingConfiguration configuration = DataParallelTrainingTests.Configuration(folder.Path, folder.Path, 2);
        configuration.Training.ShardingStrategy = "HYBRID_SHARD";
        using var group = new ShardedOptimizerFileTests.FixedRankGroup(0, 2);
        using var session = new TrainingSession(model, configuration, new TrainingSessionOptions
        {
            ProcessGroup = group, ParameterGroups = module => [new ParameterGroup("all", [.. module.parameters()])],
        });
        Assert.Equal(ShardingMode.None, session.Sharding);

        // Named explicitly, a sharded strategy refuses the same settings.
        configuration.Training.ShardingStrategy = "FULL_SHARD";
        using var model2 = new TinyPackedModel(seed: 2);
        var error = Assert.Throws<NotSupportedException>(() => new TrainingSession(model2, configuration, new TrainingSessionOptions
        {
            ProcessGroup = group, ParameterGroups = module => [new ParameterGroup("all", [.. module.parameters()])],
        }));
        Assert.Contains("custom parameter groups", error.Message, StringComparison.Ordinal);
    }
}
