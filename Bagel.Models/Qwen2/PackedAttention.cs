using Bagel.Models.Attention;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Qwen2;

/// <summary>
/// Shared GQA self-attention of the dense and MoE layers (the reference's <c>PackedAttention</c>): q/k/v with bias,
/// o without, optional per-head QK RMSNorm before RoPE, masked attention within each sample.
/// </summary>
public sealed class PackedAttention : torch.nn.Module<Qwen2LayerInput, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear o_proj;
    private readonly Qwen2RMSNorm? q_norm;
    private readonly Qwen2RMSNorm? k_norm;
#pragma warning restore IDE1006
    private readonly int _heads, _kvHeads, _headDim;

    /// <summary>Creates the attention for <paramref name="config"/>.</summary>
    /// <param name="config">The backbone config (heads, kv heads, qk_norm).</param>
    public PackedAttention(Qwen2Config config) : base(nameof(PackedAttention))
    {
        ArgumentNullException.ThrowIfNull(config);
        (_heads, _kvHeads, _headDim) = (config.NumAttentionHeads, config.NumKeyValueHeads, config.HeadDim);
        q_proj = torch.nn.Linear(config.HiddenSize, _heads * _headDim, hasBias: true);
        k_proj = torch.nn.Linear(config.HiddenSize, _kvHeads * _headDim, hasBias: true);
        v_proj = torch.nn.Linear(config.HiddenSize, _kvHeads * _headDim, hasBias: true);
        o_proj = torch.nn.Linear(_heads * _headDim, config.HiddenSize, hasBias: false);
        if (config.QkNorm)
        {
            q_norm = new Qwen2RMSNorm(_headDim, config.RmsNormEps);
            k_norm = new Qwen2RMSNorm(_headDim, config.RmsNormEps);
        }
        RegisterComponents();
    }

    /// <inheritdoc />
    public override torch.Tensor forward(Qwen2LayerInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var scope = torch.NewDisposeScope();
        var packed_sequence = input.PackedSequence;
        var packed_query_states = q_proj.call(packed_sequence).view(-1, _heads, _headDim);
        var packed_key_states = k_proj.call(packed_sequence).view(-1, _kvHeads, _headDim);
        var packed_value_states = v_proj.call(packed_sequence).view(-1, _kvHeads, _headDim);

        packed_query_states = q_norm?.forward(packed_query_states) ?? packed_query_states;
        packed_key_states = k_norm?.forward(packed_key_states) ?? packed_key_states;

        (packed_query_states, packed_key_states) = Qwen2RotaryEmbedding.ApplyRotaryPosEmb(
            packed_query_states, packed_key_states, input.Cos, input.Sin);

        var packed_attn_output = input.Cache is { } cache
            ? cache.Attend(packed_query_states, packed_key_states, packed_value_states)
            : PackedScaledDotProductAttention.Forward(packed_query_states, packed_key_states, packed_value_states, input.AttentionMask);
        return o_proj.call(packed_attn_output).MoveToOuterDisposeScope();
    }
}
