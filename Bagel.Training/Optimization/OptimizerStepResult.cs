namespace Bagel.Training.Optimization;

/// <summary>What one accumulation boundary did.</summary>
/// <param name="GradNorm">Global gradient L2 norm before clipping (the reference's <c>total_norm</c>).</param>
/// <param name="LearningRate">Learning rate of this step's update (first group; the reference's logged <c>lr</c>).</param>
/// <param name="Skipped">True when the loss or norm was NaN or infinite and the update was skipped.</param>
public readonly record struct OptimizerStepResult(double GradNorm, double LearningRate, bool Skipped)
{
    /// <summary>Wall seconds of the gradient-norm clipping (0 when not measured).</summary>
    public double ClipSeconds { get; init; }

    /// <summary>Wall seconds of the AdamW update (0 when skipped or not measured).</summary>
    public double AdamWSeconds { get; init; }

    /// <summary>Wall seconds of the EMA update (0 when skipped, without EMA, or not measured).</summary>
    public double EmaSeconds { get; init; }

    /// <summary>Wall seconds of zeroing the gradients after the update (0 when not measured).</summary>
    public double ZeroGradSeconds { get; init; }

    /// <summary>
    /// Buckets whose clip scaling, EMA update and zeroing ran inside the fused AdamW pass
    /// (<see cref="FlatBufferAdamW.FoldStepperWork"/>): their share of those is in <see cref="AdamWSeconds"/>, and
    /// <see cref="ClipSeconds"/> is then the gradient norm alone. 0 when nothing was folded.
    /// </summary>
    public int FoldedBuckets { get; init; }

    /// <summary>EMA tensors the fused pass updated (the rest are in <see cref="EmaSeconds"/>); 0 when nothing was folded.</summary>
    public int FoldedEmaTensors { get; init; }
}
