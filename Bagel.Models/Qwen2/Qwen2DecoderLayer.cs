using TorchSharp;

namespace Bagel.Models.Qwen2;

/// <summary>The dense pre-norm block: <c>x += self_attn(input_layernorm(x)); x += mlp(post_attention_layernorm(x))</c>.</summary>
public sealed class Qwen2DecoderLayer : Qwen2PackedDecoderLayer
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly PackedAttention self_attn;
    private readonly Qwen2MLP mlp;
    private readonly Qwen2RMSNorm input_layernorm;
    private readonly Qwen2RMSNorm post_attention_layernorm;
#pragma warning restore IDE1006

    /// <summary>Creates the layer.</summary>
    /// <param name="config">The backbone config.</param>
    public Qwen2DecoderLayer(Qwen2Config config) : base(nameof(Qwen2DecoderLayer))
    {
        ArgumentNullException.ThrowIfNull(config);
        self_attn = new PackedAttention(config);
        mlp = new Qwen2MLP(config);
        input_layernorm = new Qwen2RMSNorm(config.HiddenSize, config.RmsNormEps);
        post_attention_layernorm = new Qwen2RMSNorm(config.HiddenSize, config.RmsNormEps);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override torch.Tensor forward(Qwen2LayerInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var scope = torch.NewDisposeScope();
        var residual = input.PackedSequence;
        var packed_sequence = input_layernorm.forward(residual);
        packed_sequence = self_attn.forward(input with { PackedSequence = packed_sequence });
        packed_sequence = residual + packed_sequence;

        residual = packed_sequence;
        packed_sequence = mlp.forward(post_attention_layernorm.forward(packed_sequence));
        return (residual + packed_sequence).MoveToOuterDisposeScope();
    }
}
