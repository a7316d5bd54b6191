namespace Bagel.Training.Sharding;

/// <summary>
/// How the training state is spread over the ranks of a data-parallel job (the reference's FSDP
/// <c>sharding_strategy</c>, see docs/sharding.md). Every mode trains the same model on the same global batches and
/// gives the same weights as plain data parallelism (within float rounding); they differ in what each rank keeps.
/// </summary>
public enum ShardingMode
{
    /// <summary>Plain data parallelism: every rank keeps the whole model, gradients, AdamW moments and EMA (FSDP's <c>NO_SHARD</c>).</summary>
    None,

    /// <summary>
    /// Optimizer-state sharding (ZeRO stage 1; flag value <c>OPTIMIZER_SHARD</c>, a name of this port): every rank keeps
    /// the whole parameters and a whole gradient buffer, but the AdamW moments, the float32 master shard and the EMA
    /// only for its own 1/W of the flat parameters. Gradients are reduce-scattered, each rank updates its shard, and the
    /// parameters are all-gathered.
    /// </summary>
    OptimizerState,

    /// <summary>
    /// <see cref="OptimizerState"/> plus gradient sharding (ZeRO stage 2, FSDP's <c>SHARD_GRAD_OP</c>): after the
    /// reduce-scatter the whole gradient buffer is released and only the rank's gradient shard is kept until the next
    /// backward. Without per-layer backward hooks the full gradients still exist during backward (see docs/sharding.md).
    /// </summary>
    Gradients,

    /// <summary>
    /// <see cref="Gradients"/> plus parameter sharding per decoder layer (ZeRO stage 3, FSDP's <c>FULL_SHARD</c>; with
    /// shard groups smaller than the world, <c>HYBRID_SHARD</c>): each rank keeps 1/W of the float32 weights (its
    /// master shard) and, between uses, no decoder layer whole. A layer's weights are gathered just before its
    /// forward and again before its activation-checkpoint recompute, and released after each; its gradients are
    /// reduced right after its backward. The parameters outside the decoder layers (embeddings, heads, norms,
    /// connectors, the ViT) form the root unit, gathered whole after every update. Activation checkpointing of the
    /// decoder layers is turned on (the reference always runs with it). See docs/sharding.md.
    /// </summary>
    Parameters,
}
