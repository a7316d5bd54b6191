using Bagel.Training.Loop;

namespace Bagel.Training.Precision;

/// <summary>float32 training: the model runs its own forward and backward; every hook is a no-op.</summary>
public sealed class Fp32PrecisionPolicy : IPrecisionPolicy
{
    /// <summary>Creates the policy for <paramref name="model"/>.</summary>
    public Fp32PrecisionPolicy(ITrainableModel model) => MasterModel = model ?? throw new ArgumentNullException(nameof(model));

    /// <inheritdoc />
    public TrainingPrecision Precision => TrainingPrecision.Fp32;

    /// <inheritdoc />
    public ITrainableModel MasterModel { get; }

    /// <inheritdoc />
    public ITrainableModel ComputeModel => MasterModel;

    /// <inheritdoc />
    public void BeforeForward() { }

    /// <inheritdoc />
    public void AfterBackward() { }

    /// <inheritdoc />
    public void MasterWeightsChanged() { }

    /// <inheritdoc />
    public void Dispose() { }
}
