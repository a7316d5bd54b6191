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
    long CeTokens, long MseTokens, long Samples, long Tokens)
{
    /// <summary>Wall seconds spent waiting for the step's micro-batches from the data stream.</summary>
    public double DataWaitSeconds { get; init; }

    /// <summary>Wall seconds of the micro-batches' forward, loss and backward (the step's compute before the update).</summary>
    public double ForwardBackwardSeconds { get; init; }

    /// <summary>Wall seconds of the accumulation boundary: clip, NaN guard, AdamW, schedule, EMA and zero_grad.</summary>
    public double OptimizerStepSeconds { get; init; }

    /// <summary>The parts of <see cref="OptimizerStepSeconds"/>: clip, AdamW, EMA and zero_grad seconds.</summary>
    public Bagel.Training.Optimization.OptimizerStepResult OptimizerStep { get; init; }
}
