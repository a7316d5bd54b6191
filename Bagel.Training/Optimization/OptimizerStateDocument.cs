namespace Bagel.Training.Optimization;

/// <summary>The JSON part of a saved AdamW state (safetensors metadata key <see cref="AdamWStateFile.MetadataKey"/>).</summary>
/// <param name="FormatVersion">Format version; <see cref="AdamWStateFile.FormatVersion"/> when written.</param>
/// <param name="Groups">One entry per parameter group, in optimizer order.</param>
public sealed record OptimizerStateDocument(int FormatVersion, IReadOnlyList<OptimizerGroupState> Groups);

/// <summary>The settings and per-parameter step counts of one AdamW group.</summary>
/// <param name="LearningRate">Learning rate in effect when saved.</param>
/// <param name="InitialLearningRate">The group's learning rate when it was added.</param>
/// <param name="Beta1">β1.</param>
/// <param name="Beta2">β2.</param>
/// <param name="Eps">ε.</param>
/// <param name="WeightDecay">Weight decay.</param>
/// <param name="Amsgrad">Whether AMSGrad state is stored.</param>
/// <param name="Steps">Each parameter's step count, in group order.</param>
public sealed record OptimizerGroupState(double LearningRate, double InitialLearningRate, double Beta1, double Beta2, double Eps,
    double WeightDecay, bool Amsgrad, IReadOnlyList<long> Steps);
