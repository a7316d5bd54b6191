using TorchSharp;

namespace Bagel.Models.Qwen2;

/// <summary>
/// The MoT block (model.md §2.3, the released model): every norm, projection and MLP has a <c>_moe_gen</c> twin
/// for gen rows; attention is one joint softmax per sample. With <c>freeze_und</c> the und rows of the attention
/// and MLP outputs are cut from the graph.
/// </summary>
public sealed class Qwen2MoTDecoderLayer : Qwen2PackedDecoderLayer
{
#pragma warning disable IDE1006 // checkpoint key names, in the reference's registration order
    private readonly PackedAttentionMoT self_attn;
    private readonly Qwen2MLP mlp;
    private readonly Qwen2MLP mlp_moe_gen;
    private readonly Qwen2RMSNorm input_layernorm;
    private readonly Qwen2RMSNorm input_layernorm_moe_gen;
    private readonly Qwen2RMSNorm post_attention_layernorm;
    private readonly Qwen2RMSNorm post_attention_layernorm_moe_gen;
#pragma warning restore IDE1006
    private readonly bool _freezeUnd;

    /// <summary>Creates the layer.</summary>
    /// <param name="config">The backbone config.</param>
    public Qwen2MoTDecoderLayer(Qwen2Config config) : base(nameof(Qwen2MoTDecoderLayer))
    {
        ArgumentNullException.ThrowIfNull(config);
        _freezeUnd = config.FreezeUnd;
        self_attn = new PackedAttentionMoT(config);
        mlp = new Qwen2MLP(config);
        mlp_moe_gen = new Qwen2MLP(config);
        input_layernorm = new Qwen2RMSNorm(config.HiddenSize, config.RmsNormEps);
        input_layernorm_moe_gen = new Qwen2RMSNorm(config.HiddenSize, config.RmsNormEps);
        post_attention_layernorm = new Qwen2RMSNorm(config.HiddenSize, config.RmsNormEps);
        post_attention_layernorm_moe_gen = new Qwen2RMSNorm(config.HiddenSize, config.RmsNormEps);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override torch.Tensor forward(Qwen2LayerInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Qwen2TokenRouting routing = input.RequireRouting(nameof(Qwen2MoTDecoderLayer));
        using var scope = torch.NewDisposeScope();
        var residual = input.PackedSequence;
        long length = residual.shape[0];
        var packed_sequence_ = routing.Merge(
            input_layernorm.forward(routing.SelectUnd(residual)),
            input_layernorm_moe_gen.forward(routing.SelectGen(residual)),
            length);
        packed_sequence_ = self_attn.forward(input with { PackedSequence = packed_sequence_ });
        if (_freezeUnd) packed_sequence_ = routing.DetachUnd(packed_sequence_);
        var packed_sequence = residual + packed_sequence_;

        residual = packed_sequence;
        var mlp_und = mlp.forward(post_attention_layernorm.forward(routing.SelectUnd(packed_sequence)));
        if (_freezeUnd) mlp_und = mlp_und.detach();
        var mlp_gen = mlp_moe_gen.forward(post_attention_layernorm_moe_gen.forward(routing.SelectGen(packed_sequence)));
        packed_sequence_ = routing.Merge(mlp_und, mlp_gen, length);
        return (residual + packed_sequence_).MoveToOuterDisposeScope();
    }
}
