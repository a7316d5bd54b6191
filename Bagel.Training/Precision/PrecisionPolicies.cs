using Bagel.Training.Loop;

namespace Bagel.Training.Precision;

/// <summary>Creates the <see cref="IPrecisionPolicy"/> for a <see cref="TrainingPrecision"/>.</summary>
public static class PrecisionPolicies
{
    /// <summary>The policy for <paramref name="precision"/> over <paramref name="model"/>'s float32 parameters.</summary>
    /// <param name="precision">fp32 or bf16 mixed.</param>
    /// <param name="model">The model holding the master weights.</param>
    /// <returns>A new policy; dispose it after the run (it owns the bf16 working copy).</returns>
    public static IPrecisionPolicy Create(TrainingPrecision precision, ITrainableModel model) => precision switch
    {
        TrainingPrecision.Fp32 => new Fp32PrecisionPolicy(model),
        TrainingPrecision.Bf16Mixed => new Bf16MixedPrecisionPolicy(model),
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "Unknown training precision."),
    };
}
