using TorchSharp;

namespace Bagel.Models.Siglip;

/// <summary>
/// One pre-LN encoder layer (model.md §3 step 4): <c>x += self_attn(layer_norm1(x))</c>, then
/// <c>x += mlp(layer_norm2(x))</c>.
/// </summary>
public sealed class SiglipEncoderLayer : torch.nn.Module<torch.Tensor, IReadOnlyList<long>, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly SiglipAttention self_attn;
    private readonly SiglipLayerNorm layer_norm1;
    private readonly SiglipMLP mlp;
    private readonly SiglipLayerNorm layer_norm2;
#pragma warning restore IDE1006

    /// <summary>Creates the layer.</summary>
    /// <param name="config">The tower config.</param>
    public SiglipEncoderLayer(SiglipVisionConfig config) : base(nameof(SiglipEncoderLayer))
    {
        ArgumentNullException.ThrowIfNull(config);
        self_attn = new SiglipAttention(config);
        layer_norm1 = new SiglipLayerNorm(config.HiddenSize, config.LayerNormEps);
        mlp = new SiglipMLP(config);
        layer_norm2 = new SiglipLayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>The attention block.</summary>
    public SiglipAttention SelfAttention => self_attn;

    /// <inheritdoc />
    public override torch.Tensor forward(torch.Tensor hidden_states, IReadOnlyList<long> seqlens)
    {
        using var scope = torch.NewDisposeScope();
        var residual = hidden_states;
        var states = residual + self_attn.forward(layer_norm1.forward(hidden_states), seqlens).to(residual.dtype);
        residual = states;
        states = residual + mlp.forward(layer_norm2.forward(states)).to(residual.dtype);
        return states.MoveToOuterDisposeScope();
    }
}
