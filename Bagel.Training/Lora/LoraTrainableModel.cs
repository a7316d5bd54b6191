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

    /// <summary>Removes the adapters from the base model (hooks off, base weights as before).</summary>
    public void Dispose() => Adapters.Dispose();
}
