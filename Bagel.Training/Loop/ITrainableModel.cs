using Bagel.Core.Batching;
using TorchSharp;

namespace Bagel.Training.Loop;

/// <summary>
/// The seam between the model and the training loop: what the loop needs from a model for one micro-batch.
/// The BAGEL composite implements it through <c>Bagel.Training.Models.BagelTrainingModel</c>. <see cref="Trainer"/> (built by
/// <see cref="TrainerBuilder"/>) drives it in the reference's order (training.md 5.4), using only pieces of this
/// assembly around the call to <see cref="Forward"/>, the same ones a custom loop calls through a <see cref="TrainingSession"/>:
/// <list type="number">
/// <item><c>TrainingSession.Restore</c>: seeds torch's generator, then <c>ResumePlanner.Plan</c> → <c>TrainingCheckpointer.Restore</c> (weights, EMA, optimizer, schedule, RNG, data status, start step);</item>
/// <item>per micro-batch: <see cref="Forward"/> → <c>TrainingLoss.Combine</c> → <c>Total.backward()</c>; <c>ThroughputWindow.Add</c>;</item>
/// <item>at an accumulation boundary: <c>OptimizerStepper.Step</c> (clip, NaN guard, AdamW, schedule, EMA, zero grad);</item>
/// <item>every <c>log_every</c>: <c>TrainLogLine.Format</c> through <c>TrainingLog.Step</c>, <c>StepMetricsFactory.Create</c> to each <c>IMetricSink</c>;</item>
/// <item>every <c>save_every</c> and at the end: <c>TrainingSession.Save</c> (→ <c>TrainingCheckpointer.Save</c>) with the data status.</item>
/// </list>
/// </summary>
public interface ITrainableModel
{
    /// <summary>The trained module (its state dict is <c>model.safetensors</c>).</summary>
    torch.nn.Module Module { get; }

    /// <summary>A new instance of the same architecture, for the EMA copy (<c>EmaModel.Create</c>'s factory).</summary>
    torch.nn.Module CreateTwin();

    /// <summary>Runs one packed micro-batch and returns the unreduced losses.</summary>
    ModelLossOutputs Forward(PackedBatch batch);

    /// <summary>
    /// This model's forward over <paramref name="workingCopy"/>, a twin from <see cref="CreateTwin"/> in another dtype
    /// (bf16 mixed precision runs its forward and backward on a bf16 copy; see
    /// <c>Bagel.Training.Precision.Bf16MixedPrecisionPolicy</c>). The result shares everything else (VAE, noise source)
    /// with this model. The default throws: a model must opt in to mixed precision.
    /// </summary>
    /// <param name="workingCopy">The twin whose parameters the returned model's forward uses.</param>
    /// <returns>A model whose <see cref="Module"/> is <paramref name="workingCopy"/>.</returns>
    /// <exception cref="NotSupportedException">The model does not support a working copy.</exception>
    ITrainableModel ForWorkingCopy(torch.nn.Module workingCopy) =>
        throw new NotSupportedException(
            $"{GetType().Name} does not implement ITrainableModel.ForWorkingCopy, which bf16 mixed precision needs to run a bf16 copy of the model; " +
            "implement it (return the same forward over the given module) or train in fp32.");
}

/// <summary>Unreduced losses of one micro-batch, as <c>TrainingLoss.Combine</c> takes them.</summary>
/// <param name="CePerToken">CE per labelled token [N_ce]; null when <c>visual_und</c> is off.</param>
/// <param name="CeTokenWeights">Per-token CE weights [N_ce] for <c>ce_loss_reweighting</c>; null otherwise.</param>
/// <param name="MseSquaredError">Squared error per noisy latent token and channel [N_mse, C]; null when <c>visual_gen</c> is off.</param>
public sealed record ModelLossOutputs(torch.Tensor? CePerToken, torch.Tensor? CeTokenWeights, torch.Tensor? MseSquaredError);
