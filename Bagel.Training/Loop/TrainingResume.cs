using Bagel.Core.DataStatus;
using Bagel.Training.Checkpoints;

namespace Bagel.Training.Loop;

/// <summary>Where a run starts, as <see cref="TrainingSession.Restore(CancellationToken)"/> found it.</summary>
/// <param name="Progress">The counters to continue from: completed steps (the 0-based index of the first step to
/// train), tokens and samples seen; all 0 from scratch or after a weights-only resume.</param>
/// <param name="DataStatus">This rank's data status to start the data pipeline after (pass it to
/// <c>DataPipeline.ReadAsync</c>); null starts the data from its beginning.</param>
/// <param name="Restored">What was loaded, file by file (the plan's kind, the train state, the model's load report).</param>
public sealed record TrainingResume(TrainProgress Progress, RankDataStatus? DataStatus, RestoreResult Restored)
{
    /// <summary>The 0-based index of the first step to train (the reference's <c>curr_step</c>).</summary>
    public long StartStep => Progress.CompletedSteps;
}
