using Bagel.Training.Loop;

namespace Bagel.Training.Precision;

/// <summary>
/// Where a training step's forward and backward passes run and how their gradients reach the float32 master
/// parameters (docs/precision.md). The loop calls, per micro-batch, <see cref="BeforeForward"/>, then
/// <c>ComputeModel.Forward</c> and the backward pass, then <see cref="AfterBackward"/>; the optimizer step (clip, AdamW,
/// EMA) then runs on the master model's parameters and gradients, whatever the precision. Checkpoints, the EMA copy
/// and the optimizer never see the working copy.
/// </summary>
public interface IPrecisionPolicy : IDisposable
{
    /// <summary>The precision this policy implements.</summary>
    TrainingPrecision Precision { get; }

    /// <summary>The model that holds the float32 master parameters (the optimizer's, the checkpoint's).</summary>
    ITrainableModel MasterModel { get; }

    /// <summary>The model whose forward and backward the loop runs: the master model itself in fp32, a bf16 working
    /// copy in bf16 mixed precision. Validation runs on it too.</summary>
    ITrainableModel ComputeModel { get; }

    /// <summary>Brings the working copy up to date with the master parameters when they changed (after an optimizer
    /// step, a restore or <see cref="MasterWeightsChanged"/>). Call before every forward pass.</summary>
    void BeforeForward();

    /// <summary>Adds the working copy's gradients into the master parameters' float32 gradients and clears the working
    /// ones. Call after every backward pass (each micro-batch), before the optimizer step.</summary>
    void AfterBackward();

    /// <summary>Marks the master parameters as changed outside the loop's optimizer step (weights loaded or edited by
    /// the caller), so the next <see cref="BeforeForward"/> copies all of them, frozen ones included.</summary>
    void MasterWeightsChanged();
}
