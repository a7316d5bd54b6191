using Bagel.Models.Bagel;
using Bagel.Models.Lora;
using TorchSharp;

namespace Bagel.Training.ValidationImages;

/// <summary>
/// The weights one validation render uses, held for the render's length: a full model (the EMA copy or the trained
/// model), or, for LoRA, the frozen base model with its attached adapters. With LoRA and EMA, the EMA adapter weights
/// are copied into the attached adapters for the render and the live weights copied back, bit for bit, on
/// <see cref="Dispose"/>, so the optimizer's parameters are exactly what they were.
/// </summary>
internal sealed class ValidationWeights : IDisposable
{
    private readonly LoraAdapterSet? _adapters;
    private readonly List<torch.Tensor> _live = [];

    private ValidationWeights(BagelModel model, LoraAdapterSet? adapters)
    {
        Model = model;
        _adapters = adapters;
    }

    /// <summary>The model to render with.</summary>
    public BagelModel Model { get; }

    /// <summary>Modules outside <see cref="Model"/> that its forward runs through (the attached adapters), for the renderer's eval mode.</summary>
    public IReadOnlyList<torch.nn.Module> AlsoEval => _adapters is null ? [] : [_adapters];

    /// <summary>A full model's weights.</summary>
    public static ValidationWeights Full(BagelModel model) => new(model ?? throw new ArgumentNullException(nameof(model)), null);

    /// <summary>The base model with its attached adapters; with <paramref name="ema"/>, its weights swapped in until disposed.</summary>
    /// <param name="baseModel">The model the adapters are attached to.</param>
    /// <param name="attached">The attached (trained) adapters.</param>
    /// <param name="ema">The EMA copy of the adapters, or null to render with the live ones.</param>
    public static ValidationWeights Lora(BagelModel baseModel, LoraAdapterSet attached, LoraAdapterSet? ema)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(attached);
        var weights = new ValidationWeights(baseModel, attached);
        if (ema is null) return weights;
        using (torch.no_grad())
        {
            foreach (LoraLinear layer in attached.Layers)
            {
                weights._live.Add(layer.WeightA.detach().clone());
                weights._live.Add(layer.WeightB.detach().clone());
            }
        }
        try
        {
            attached.CopyWeightsFrom(ema);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
        return weights;
    }

    /// <summary>Puts the live adapter weights back (LoRA with EMA) and frees the saved copies.</summary>
    public void Dispose()
    {
        if (_adapters is not null && _live.Count > 0)
        {
            using var noGrad = torch.no_grad();
            int k = 0;
            foreach (LoraLinear layer in _adapters.Layers)
            {
                layer.WeightA.copy_(_live[k++]);
                layer.WeightB.copy_(_live[k++]);
            }
        }
        foreach (torch.Tensor saved in _live) saved.Dispose();
        _live.Clear();
    }
}
