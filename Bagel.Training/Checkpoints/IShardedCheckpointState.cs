namespace Bagel.Training.Checkpoints;

/// <summary>
/// The model, EMA and optimizer files of a run whose state is sharded over ranks (<see cref="Sharding.ShardedCheckpoint"/>):
/// they replace the whole-model parts that <see cref="TrainingCheckpointer"/> writes and reads otherwise.
/// </summary>
public interface IShardedCheckpointState
{
    /// <summary>
    /// Rank 0's parts for the checkpoint of <paramref name="completedSteps"/> steps, written into the temp folder before
    /// the small files; every other rank runs the matching collectives meanwhile.
    /// </summary>
    IReadOnlyList<CheckpointPart> WeightParts(long completedSteps);

    /// <summary>Loads this rank's optimizer state from the checkpoint folder <paramref name="folder"/>.</summary>
    void LoadOptimizerState(string folder);
}
