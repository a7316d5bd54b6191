namespace Bagel.Training.Loop;

/// <summary>What one completed optimizer step did, as the on-step callbacks receive it.</summary>
/// <param name="Step">0-based index of the step (the reference's <c>curr_step</c>); the run has now completed <c>Step + 1</c> steps.</param>
/// <param name="Mse">MSE loss of the step (mean over its micro-batches; 0 when no micro-batch had MSE tokens).</param>
/// <param name="Ce">CE loss of the step (mean over its micro-batches; 0 when none had CE tokens).</param>
/// <param name="TotalLoss">The weighted loss that went into backward, summed over micro-batches.</param>
/// <param name="LearningRate">Learning rate the update used.</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
/// <param name="Skipped">True when the update was skipped for a NaN or infinite loss or norm.</param>
/// <param name="CeTokens">Tokens with CE loss in the step.</param>
/// <param name="MseTokens">Tokens with MSE loss in the step.</param>
/// <param name="Samples">Samples in the step's packed batches.</param>
/// <param name="Tokens">Packed tokens in the step.</param>
public sealed record TrainingStepReport(long Step, double Mse, double Ce, double TotalLoss, double LearningRate, double GradNorm, bool Skipped,
    long CeTokens, long MseTokens, long Samples, long Tokens);

/// <summary>How a <see cref="Trainer.RunAsync"/> ended.</summary>
/// <param name="StartStep">0-based index of the first step this run trained (the resumed checkpoint's completed steps).</param>
/// <param name="CompletedSteps">Optimizer steps completed in total, resumed ones included.</param>
/// <param name="SkippedNonFiniteSteps">Steps skipped for NaN or infinite losses, resumed ones included.</param>
/// <param name="Cancelled">True when the run stopped early because its token was cancelled.</param>
/// <param name="LastCheckpoint">The folder of the final checkpoint.</param>
public sealed record TrainingRunResult(long StartStep, long CompletedSteps, long SkippedNonFiniteSteps, bool Cancelled, string LastCheckpoint);
