using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Siglip;

/// <summary>The stack of <see cref="SiglipEncoderLayer"/>s (<c>encoder.layers.{j}</c>).</summary>
public sealed class SiglipEncoder : torch.nn.Module<torch.Tensor, IReadOnlyList<long>, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly ModuleList<SiglipEncoderLayer> layers;
#pragma warning restore IDE1006

    /// <summary>Creates <see cref="SiglipVisionConfig.NumHiddenLayers"/> layers.</summary>
    /// <param name="config">The tower config.</param>
    public SiglipEncoder(SiglipVisionConfig config) : base(nameof(SiglipEncoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        layers = new ModuleList<SiglipEncoderLayer>([.. Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new SiglipEncoderLayer(config))]);
        RegisterComponents();
    }

    /// <summary>The layers.</summary>
    public IReadOnlyList<SiglipEncoderLayer> Layers => [.. layers];

    /// <inheritdoc />
    public override torch.Tensor forward(torch.Tensor inputs_embeds, IReadOnlyList<long> seqlens)
    {
        using var scope = torch.NewDisposeScope();
        var hidden_states = inputs_embeds;
        foreach (SiglipEncoderLayer layer in layers)
            hidden_states = layer.forward(hidden_states, seqlens);
        return hidden_states.MoveToOuterDisposeScope();
    }
}
