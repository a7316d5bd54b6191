using System.Runtime.InteropServices;

namespace Bagel.Training.Loop;

/// <summary>How a <see cref="Trainer.RunAsync"/> ended.</summary>
/// <param name="StartStep">0-based index of the first step this run trained (the resumed checkpoint's completed steps).</param>
/// <param name="CompletedSteps">Optimizer steps completed in total, resumed ones included.</param>
/// <param name="SkippedNonFiniteSteps">Steps skipped for NaN or infinite losses, resumed ones included.</param>
/// <param name="Cancelled">True when the run stopped early because its token was cancelled or, with
/// <see cref="TrainerBuilder.StopOnSignals"/>, a signal arrived.</param>
/// <param name="LastCheckpoint">The folder of the final checkpoint.</param>
public sealed record TrainingRunResult(long StartStep, long CompletedSteps, long SkippedNonFiniteSteps, bool Cancelled, string LastCheckpoint)
{
    /// <summary>The signal (SIGINT or SIGTERM) that stopped the run under <see cref="TrainerBuilder.StopOnSignals"/>; null otherwise.</summary>
    public PosixSignal? StopSignal { get; init; }
}
