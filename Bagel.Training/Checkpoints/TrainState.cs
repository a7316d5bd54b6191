namespace Bagel.Training.Checkpoints;

/// <summary>
/// The loop's own state in a checkpoint (<c>train_state.json</c>). <see cref="CompletedSteps"/> = N means the
/// checkpoint holds the state after N optimizer updates, and a resume trains the (N+1)-th update next, whose 0-based
/// index (the reference's <c>curr_step</c>) is N. The reference instead names a periodic checkpoint after the last
/// step index it trained (folder N holds N+1 updates) and its final one after <c>total_steps</c>; we do not copy that.
/// </summary>
/// <param name="FormatVersion">Format version; <see cref="CurrentFormatVersion"/> when written.</param>
/// <param name="CompletedSteps">Optimizer updates completed (skipped non-finite steps included, as they consume a step).</param>
/// <param name="SkippedNonFiniteSteps">Steps skipped so far for a non-finite loss or gradient norm.</param>
/// <param name="ConsecutiveNonFiniteSteps">Such steps in a row at save time.</param>
/// <param name="TokensSeen">Real tokens trained on so far.</param>
/// <param name="SamplesSeen">Samples trained on so far.</param>
/// <param name="SavedAt">When the checkpoint was written.</param>
public sealed record TrainState(int FormatVersion, long CompletedSteps, long SkippedNonFiniteSteps, int ConsecutiveNonFiniteSteps,
    long TokensSeen, long SamplesSeen, DateTimeOffset SavedAt)
{
    /// <summary>Format version this build writes and reads.</summary>
    public const int CurrentFormatVersion = 1;

    /// <summary>0-based index of the next step to train (equal to <see cref="CompletedSteps"/>).</summary>
    public long NextStepIndex => CompletedSteps;

    /// <summary>Reads <c>train_state.json</c> from <paramref name="path"/>, checking its format version.</summary>
    public static TrainState Read(string path)
    {
        TrainState state = CheckpointFiles.ReadJson(path, TrainingJsonContext.Default.TrainState);
        if (state.FormatVersion != CurrentFormatVersion)
            throw new CheckpointException($"{path} has train-state format version {state.FormatVersion}; this build reads {CurrentFormatVersion}.");
        if (state.CompletedSteps < 0) throw new CheckpointException($"{path} has negative completed_steps {state.CompletedSteps}.");
        return state;
    }

    /// <summary>Writes this state to <paramref name="path"/> atomically.</summary>
    public void Write(string path) => CheckpointFiles.WriteJsonAtomic(path, this, TrainingJsonContext.Default.TrainState);
}
