using Bagel.Training.Options;

namespace Bagel.Training.Sharding;

/// <summary>How the reference's <c>sharding_strategy</c> and <c>num_shard</c> flags choose a <see cref="ShardingMode"/>.</summary>
public static class ShardingModes
{
    /// <summary>The flag value of optimizer-state sharding (ZeRO stage 1), a name of this port; FSDP has no such strategy.</summary>
    public const string OptimizerShard = "OPTIMIZER_SHARD";

    /// <summary>
    /// The mode of <paramref name="options"/> for a job of <paramref name="worldSize"/> ranks: <c>NO_SHARD</c> runs as
    /// plain data parallelism; the reference's default <c>HYBRID_SHARD</c> shards the parameters per decoder layer within
    /// groups of <c>num_shard</c> ranks (one group when it covers the world; nothing in one process; a bf16 run or one with
    /// custom parameter groups falls back to data parallelism, see <c>TrainingSession</c>); <c>OPTIMIZER_SHARD</c> shards the
    /// optimizer state and EMA over the world; <c>SHARD_GRAD_OP</c> shards the gradients too; <c>_HYBRID_SHARD_ZERO2</c>
    /// does so within groups of <c>num_shard</c> ranks (one group when it covers the world), replicated across them;
    /// <c>FULL_SHARD</c> also shards the parameters per decoder layer.
    /// </summary>
    /// <returns>The mode, the ranks per shard group (the world size, or <c>num_shard</c> under <c>_HYBRID_SHARD_ZERO2</c>),
    /// and a sentence for the log saying what runs.</returns>
    /// <exception cref="NotSupportedException">An unknown strategy, or a <c>num_shard</c> that does not divide the world size.</exception>
    public static (ShardingMode Mode, int ShardRanks, string Description) FromFlags(TrainingOptions options, int worldSize)
    {
        ArgumentNullException.ThrowIfNull(options);
        string strategy = options.ShardingStrategy;
        switch (strategy)
        {
            case "NO_SHARD":
                return (ShardingMode.None, worldSize, "sharding_strategy NO_SHARD: plain data parallelism (every rank keeps the whole state).");
            case "HYBRID_SHARD" when worldSize == 1:
                return (ShardingMode.None, worldSize, "sharding_strategy HYBRID_SHARD (the reference's default) in one process: nothing to shard, the whole state stays here.");
            case "HYBRID_SHARD" when options.NumShard >= worldSize:
                return (ShardingMode.Parameters, worldSize, $"sharding_strategy HYBRID_SHARD with num_shard {options.NumShard} >= world size {worldSize}: one shard group, as FULL_SHARD (parameters per decoder layer, gradients, AdamW state and EMA sharded over {worldSize} ranks).");
            case "HYBRID_SHARD" when worldSize % options.NumShard == 0:
                return (ShardingMode.Parameters, options.NumShard, $"sharding_strategy HYBRID_SHARD: parameters (per decoder layer), gradients, AdamW state and EMA sharded within groups of num_shard {options.NumShard} ranks, replicated over {worldSize / options.NumShard} groups.");
            case "HYBRID_SHARD":
                throw new NotSupportedException($"sharding_strategy HYBRID_SHARD: num_shard {options.NumShard} does not divide the world size {worldSize}.");
            case OptimizerShard:
                return (ShardingMode.OptimizerState, worldSize, $"sharding_strategy {OptimizerShard}: AdamW state and EMA sharded over {worldSize} rank(s).");
            case "SHARD_GRAD_OP":
                return (ShardingMode.Gradients, worldSize, $"sharding_strategy SHARD_GRAD_OP: gradients, AdamW state and EMA sharded over {worldSize} rank(s).");
            case "_HYBRID_SHARD_ZERO2" when options.NumShard >= worldSize:
                return (ShardingMode.Gradients, worldSize, $"sharding_strategy _HYBRID_SHARD_ZERO2 with num_shard {options.NumShard} >= world size {worldSize}: one shard group, as SHARD_GRAD_OP.");
            case "_HYBRID_SHARD_ZERO2" when worldSize % options.NumShard == 0:
                return (ShardingMode.Gradients, options.NumShard, $"sharding_strategy _HYBRID_SHARD_ZERO2: gradients, AdamW state and EMA sharded within groups of num_shard {options.NumShard} ranks, replicated over {worldSize / options.NumShard} groups.");
            case "_HYBRID_SHARD_ZERO2":
                throw new NotSupportedException($"sharding_strategy _HYBRID_SHARD_ZERO2: num_shard {options.NumShard} does not divide the world size {worldSize}.");
            case "FULL_SHARD":
                return (ShardingMode.Parameters, worldSize, $"sharding_strategy FULL_SHARD: parameters (per decoder layer), gradients, AdamW state and EMA sharded over {worldSize} rank(s); activation checkpointing on.");
            default:
                throw new NotSupportedException($"sharding_strategy '{strategy}' is not one of {string.Join(", ", TrainingOptionsValidator.ShardingStrategies)}.");
        }
    }
}
