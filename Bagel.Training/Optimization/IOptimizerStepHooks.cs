namespace Bagel.Training.Optimization;

/// <summary>
/// The parts of <see cref="OptimizerStepper.Step"/> that depend on where the gradients and weights live: a sharded
/// optimizer (<see cref="Sharding.ShardedOptimizer"/>) clips with a norm over every rank's shard, all-gathers the
/// updated shards and zeroes its own gradient buffers. Without hooks the stepper clips and zeroes the optimizer's parameters.
/// </summary>
public interface IOptimizerStepHooks
{
    /// <summary>Clips the gradients to a global L2 norm of <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    double ClipGradNorm(double maxNorm);

    /// <summary>Runs after an applied AdamW step and EMA update (not after a skipped one).</summary>
    void AfterUpdate();

    /// <summary>Zeroes every gradient the next step accumulates into.</summary>
    void ZeroGradients();
}
