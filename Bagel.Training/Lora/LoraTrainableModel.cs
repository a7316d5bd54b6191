using Bagel.Core.Batching;
using Bagel.Models.Lora;
using Bagel.Training.Loop;
using TorchSharp;

namespace Bagel.Training.Lora;

/// <summary>
/// A model with LoRA adapters as the trainer sees it: <see cref="Module"/> is the adapter set (so AdamW, gradient
/// clipping, the EMA copy and every checkpoint's <c>model.safetensors</c> / <c>ema.safetensors</c> /
/// <c>optimizer.safetensors</c> hold the adapters only, in PEFT's key layout), while <see cref="Forward"/> runs the
/// frozen base model with the adapters hooked in. Resuming restores the adapters, their optimizer state, the EMA
/// adapters and the RNG states exactly as a full run restores its weights; the base model comes from wherever the run
/// loads it (model_path / llm_path, or the preset's initialisation), not from the checkpoint.
/// </summary>
/// <remarks>
/// In bf16 mixed precision (<see cref="ForWorkingCopy"/>) the frozen base is cast to bf16 in place, once: it has no
/// master weights to keep, so it is held in bf16 only. The adapters keep float32 master weights (AdamW, EMA,
/// checkpoints), and their bf16 working copy computes the deltas inside the bf16 forward (docs/lora.md).
/// </remarks>
public sealed class LoraTrainableModel : ITrainableModel, IDisposable
{
    private readonly ITrainableModel _inner;

    /// <summary>Attaches adapters to <paramref name="inner"/>'s module (frozen) and wraps it.</summary>
    /// <param name="inner">The base model's trainer view (e.g. <c>BagelTrainingModel</c>).</param>
    /// <param name="options">Rank, alpha, dropout, targets.</param>
    /// <exception cref="LoraException">Invalid options or targets.</exception>
    public LoraTrainableModel(ITrainableModel inner, LoraOptions options)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        Adapters = LoraAdapterSet.Attach(inner.Module, options ?? throw new ArgumentNullException(nameof(options)));
    }

    /// <summary>The attached adapters (also <see cref="Module"/>).</summary>
    public LoraAdapterSet Adapters { get; }

    /// <summary>The wrapped base model's trainer view.</summary>
    public ITrainableModel BaseModel => _inner;

    /// <inheritdoc />
    public torch.nn.Module Module => Adapters;

    /// <inheritdoc />
    public torch.nn.Module CreateTwin() => Adapters.CreateDetachedCopy();

    /// <inheritdoc />
    public ModelLossOutputs Forward(PackedBatch batch) => _inner.Forward(batch);

    /// <summary>
    /// The forward over <paramref name="workingCopy"/>, a copy of the adapters in another dtype (bf16 mixed precision's
    /// working copy, from <see cref="CreateTwin"/>): the frozen base model is cast to the copy's dtype <b>in place</b>
    /// (its float32 weights are replaced, not duplicated, and stay in that dtype after the run), the copy is hooked into
    /// it in place of the attached adapters (<see cref="LoraAdapterSet.BindWorkingCopy"/>), and the base's own
    /// <see cref="ITrainableModel.ForWorkingCopy"/> over its cast module gives the rest (for BAGEL: the VAE encode under
    /// bf16 autocast, the float32 islands of the forward). Disposing the copy hands the forward back to the attached
    /// float32 adapters.
    /// </summary>
    /// <param name="workingCopy">A detached <see cref="LoraAdapterSet"/> of these adapters.</param>
    /// <returns>A model whose <see cref="ITrainableModel.Module"/> is <paramref name="workingCopy"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="workingCopy"/> is not a detached copy of these adapters.</exception>
    /// <exception cref="NotSupportedException">The base model does not implement <see cref="ITrainableModel.ForWorkingCopy"/>.</exception>
    public ITrainableModel ForWorkingCopy(torch.nn.Module workingCopy)
    {
        if (workingCopy is not LoraAdapterSet copy || copy.BaseModel is not null || copy.Layers.Count != Adapters.Layers.Count)
            throw new ArgumentException($"The working copy must be a detached copy of the adapters (CreateTwin); got {workingCopy?.GetType().Name ?? "null"}.", nameof(workingCopy));
        torch.ScalarType dtype = copy.Layers[0].WeightA.dtype;
        torch.nn.Module baseModule = _inner.Module;
        if (baseModule.parameters().Any(p => p.is_floating_point() && p.dtype != dtype))
            baseModule.to(dtype); // frozen: no master copy to keep, so the base lives in the working dtype only
        ITrainableModel baseForward = _inner.ForWorkingCopy(baseModule);
        Adapters.BindWorkingCopy(copy);
        return new WorkingCopyModel(copy, baseForward);
    }

    /// <summary>Removes the adapters from the base model (hooks off, base weights as before).</summary>
    public void Dispose() => Adapters.Dispose();

    /// <summary>The base model's forward with a bound working copy of the adapters as the module.</summary>
    private sealed class WorkingCopyModel(LoraAdapterSet adapters, ITrainableModel baseForward) : ITrainableModel
    {
        public torch.nn.Module Module => adapters;

        public torch.nn.Module CreateTwin() => adapters.CreateDetachedCopy();

        public ModelLossOutputs Forward(PackedBatch batch) => baseForward.Forward(batch);
    }
}
