using TorchSharp;

namespace Bagel.Models.Qwen2;

/// <summary>A packed decoder layer: [L, H] in, [L, H] out (the three <c>layer_module</c> kinds).</summary>
public abstract class Qwen2PackedDecoderLayer : torch.nn.Module<Qwen2LayerInput, torch.Tensor>
{
    /// <summary>Creates the layer.</summary>
    /// <param name="name">The module name.</param>
    protected Qwen2PackedDecoderLayer(string name) : base(name) { }

    /// <summary>Creates the layer kind <paramref name="config"/> selects.</summary>
    /// <param name="config">The backbone config.</param>
    /// <returns>A new layer.</returns>
    public static Qwen2PackedDecoderLayer Create(Qwen2Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.LayerModule switch
        {
            Qwen2LayerModule.Qwen2DecoderLayer => new Qwen2DecoderLayer(config),
            Qwen2LayerModule.Qwen2MoEDecoderLayer => new Qwen2MoEDecoderLayer(config),
            Qwen2LayerModule.Qwen2MoTDecoderLayer => new Qwen2MoTDecoderLayer(config),
            _ => throw new Qwen2ConfigException($"layer_module {config.LayerModule} is not one of {string.Join(", ", Enum.GetNames<Qwen2LayerModule>())}."),
        };
    }
}
