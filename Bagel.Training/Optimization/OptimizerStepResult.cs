namespace Bagel.Training.Optimization;

/// <summary>What one accumulation boundary did.</summary>
/// <param name="GradNorm">Global gradient L2 norm before clipping (the reference's <c>total_norm</c>).</param>
/// <param name="LearningRate">Learning rate of this step's update (first group; the reference's logged <c>lr</c>).</param>
/// <param name="Skipped">True when the loss or norm was NaN or infinite and the update was skipped.</param>
public readonly record struct OptimizerStepResult(double GradNorm, double LearningRate, bool Skipped);
