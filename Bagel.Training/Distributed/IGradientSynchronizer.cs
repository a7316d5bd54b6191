namespace Bagel.Training.Distributed;

/// <summary>
/// How a step's gradients are combined over the ranks after the last micro-batch's backward: averaged in place on every
/// rank (<see cref="DataParallel"/>) or reduce-scattered into each rank's shard (<see cref="Sharding.ShardedOptimizer"/>).
/// The loop calls it once per step, before the optimizer stepper.
/// </summary>
public interface IGradientSynchronizer
{
    /// <summary>Combines this step's gradients over the ranks (a no-op for a single-process data-parallel run).</summary>
    void SynchronizeGradients();
}
