using Bagel.Models.Bagel;
using Bagel.Models.Lora;
using TorchSharp;

namespace Bagel.Training.ValidationImages;

/// <summary>
/// The weights one validation render uses, held for the render's length: a full model (the EMA copy or the trained
/// model), or, for LoRA, the frozen base model with its attached adapters. With LoRA and EMA, the adapters' forward
/// computes with the EMA adapter weights until <see cref="Dispose"/> (<see cref="LoraAdapterSet.ComputeWith"/>): nothing
/// is copied, so the optimizer's parameters stay exactly what they were, and in a bf16 run the bound bf16 working copy
/// obeys the switch too.
/// </summary>
internal sealed class ValidationWeights : IDisposable
{
    private readonly LoraAdapterSet? _adapters;
    private IDisposable? _computeWith;

    private ValidationWeights(BagelModel model, LoraAdapterSet? adapters)
    {
        Model = model;
        _adapters = adapters;
    }

    /// <summary>The model to render with.</summary>
    public BagelModel Model { get; }

    /// <summary>Modules outside <see cref="Model"/> that its forward runs through (the attached adapters), for the renderer's eval mode.</summary>
    public IReadOnlyList<torch.nn.Module> AlsoEval => _adapters is null ? [] : [_adapters];

    /// <summary>A full model's weights; <paramref name="computeWith"/>, when given, is disposed with them (a parameter-sharded
    /// run's switch to its EMA shards).</summary>
    public static ValidationWeights Full(BagelModel model, IDisposable? computeWith = null) =>
        new(model ?? throw new ArgumentNullException(nameof(model)), null) { _computeWith = computeWith };

    /// <summary>The base model with its attached adapters; with <paramref name="ema"/>, the adapters compute with its
    /// weights until disposed.</summary>
    /// <param name="baseModel">The model the adapters are attached to.</param>
    /// <param name="attached">The attached (trained) adapters.</param>
    /// <param name="ema">The EMA copy of the adapters, or null to render with the live ones.</param>
    public static ValidationWeights Lora(BagelModel baseModel, LoraAdapterSet attached, LoraAdapterSet? ema)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(attached);
        var weights = new ValidationWeights(baseModel, attached);
        if (ema is not null) weights._computeWith = attached.ComputeWith(ema);
        return weights;
    }

    /// <summary>Makes the adapters compute with their own weights again (LoRA with EMA).</summary>
    public void Dispose()
    {
        _computeWith?.Dispose();
        _computeWith = null;
    }
}
