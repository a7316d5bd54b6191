using TorchSharp;

namespace Bagel.Models.Qwen2;

/// <summary>The MoE block (model.md §2.2): shared attention and norms, the MLP split into <c>mlp</c> (und rows) and
/// <c>mlp_moe_gen</c> (gen rows).</summary>
public sealed class Qwen2MoEDecoderLayer : Qwen2PackedDecoderLayer
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly PackedAttention self_attn;
    private readonly Qwen2MLP mlp;
    private readonly Qwen2MLP mlp_moe_gen;
    private readonly Qwen2RMSNorm input_layernorm;
    private readonly Qwen2RMSNorm post_attention_layernorm;
#pragma warning restore IDE1006

    /// <summary>Creates the layer.</summary>
    /// <param name="config">The backbone config.</param>
    public Qwen2MoEDecoderLayer(Qwen2Config config) : base(nameof(Qwen2MoEDecoderLayer))
    {
        ArgumentNullException.ThrowIfNull(config);
        self_attn = new PackedAttention(config);
        mlp = new Qwen2MLP(config);
        mlp_moe_gen = new Qwen2MLP(config);
        input_layernorm = new Qwen2RMSNorm(config.HiddenSize, config.RmsNormEps);
        post_attention_layernorm = new Qwen2RMSNorm(config.HiddenSize, config.RmsNormEps);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override torch.Tensor forward(Qwen2LayerInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Qwen2TokenRouting routing = input.RequireRouting(nameof(Qwen2MoEDecoderLayer));
        using var scope = torch.NewDisposeScope();
        var residual = input.PackedSequence;
        var packed_sequence = input_layernorm.forward(residual);
        packed_sequence = self_attn.forward(input with { PackedSequence = packed_sequence });
        packed_sequence = residual + packed_sequence;

        residual = packed_sequence;
        packed_sequence = post_attention_layernorm.forward(packed_sequence);
        var packed_sequence_und = mlp.forward(routing.SelectUnd(packed_sequence));
        var packed_sequence_gen = mlp_moe_gen.forward(routing.SelectGen(packed_sequence));
        var packed_sequence_new = routing.Merge(packed_sequence_und, packed_sequence_gen, packed_sequence.shape[0]);
        return (residual + packed_sequence_new).MoveToOuterDisposeScope();
    }
}
