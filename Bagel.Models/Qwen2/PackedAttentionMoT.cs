using Bagel.Models.Attention;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Qwen2;

/// <summary>
/// MoT self-attention (the reference's <c>PackedAttentionMoT</c>, model.md §2.3 steps 2-6): und and gen tokens get
/// their own q/k/v/o projections and q/k norms, then one joint masked softmax over each sample.
/// </summary>
public sealed class PackedAttentionMoT : torch.nn.Module<Qwen2LayerInput, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names, declared in the reference's registration order
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear o_proj;
    private readonly Qwen2RMSNorm? q_norm;
    private readonly Qwen2RMSNorm? k_norm;
    private readonly Qwen2RMSNorm? q_norm_moe_gen;
    private readonly Qwen2RMSNorm? k_norm_moe_gen;
    private readonly Linear q_proj_moe_gen;
    private readonly Linear k_proj_moe_gen;
    private readonly Linear v_proj_moe_gen;
    private readonly Linear o_proj_moe_gen;
#pragma warning restore IDE1006
    private readonly int _heads, _kvHeads, _headDim;
    private readonly bool _freezeUnd;

    /// <summary>Creates the attention for <paramref name="config"/>.</summary>
    /// <param name="config">The backbone config (heads, kv heads, qk_norm, freeze_und).</param>
    public PackedAttentionMoT(Qwen2Config config) : base(nameof(PackedAttentionMoT))
    {
        ArgumentNullException.ThrowIfNull(config);
        (_heads, _kvHeads, _headDim, _freezeUnd) = (config.NumAttentionHeads, config.NumKeyValueHeads, config.HeadDim, config.FreezeUnd);
        int hidden = config.HiddenSize, queryWidth = _heads * _headDim, kvWidth = _kvHeads * _headDim;
        q_proj = torch.nn.Linear(hidden, queryWidth, hasBias: true);
        k_proj = torch.nn.Linear(hidden, kvWidth, hasBias: true);
        v_proj = torch.nn.Linear(hidden, kvWidth, hasBias: true);
        o_proj = torch.nn.Linear(queryWidth, hidden, hasBias: false);
        if (config.QkNorm)
        {
            q_norm = new Qwen2RMSNorm(_headDim, config.RmsNormEps);
            k_norm = new Qwen2RMSNorm(_headDim, config.RmsNormEps);
            q_norm_moe_gen = new Qwen2RMSNorm(_headDim, config.RmsNormEps);
            k_norm_moe_gen = new Qwen2RMSNorm(_headDim, config.RmsNormEps);
        }
        q_proj_moe_gen = torch.nn.Linear(hidden, queryWidth, hasBias: true);
        k_proj_moe_gen = torch.nn.Linear(hidden, kvWidth, hasBias: true);
        v_proj_moe_gen = torch.nn.Linear(hidden, kvWidth, hasBias: true);
        o_proj_moe_gen = torch.nn.Linear(queryWidth, hidden, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override torch.Tensor forward(Qwen2LayerInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Qwen2TokenRouting routing = input.RequireRouting(nameof(PackedAttentionMoT));
        using var scope = torch.NewDisposeScope();
        var packed_sequence = input.PackedSequence;
        long length = packed_sequence.shape[0];
        var packed_sequence_und = routing.SelectUnd(packed_sequence);
        var packed_sequence_gen = routing.SelectGen(packed_sequence);

        var packed_query_states = routing.Merge(q_proj.call(packed_sequence_und), q_proj_moe_gen.call(packed_sequence_gen), length)
            .view(-1, _heads, _headDim);
        var packed_key_states = routing.Merge(k_proj.call(packed_sequence_und), k_proj_moe_gen.call(packed_sequence_gen), length)
            .view(-1, _kvHeads, _headDim);
        var packed_value_states = routing.Merge(v_proj.call(packed_sequence_und), v_proj_moe_gen.call(packed_sequence_gen), length)
            .view(-1, _kvHeads, _headDim);
        if (_freezeUnd) packed_value_states = routing.DetachUnd(packed_value_states);

        var packed_query_states_ = NormPerExpert(routing, packed_query_states, q_norm, q_norm_moe_gen);
        var packed_key_states_ = NormPerExpert(routing, packed_key_states, k_norm, k_norm_moe_gen);

        (packed_query_states_, packed_key_states_) = Qwen2RotaryEmbedding.ApplyRotaryPosEmb(
            packed_query_states_, packed_key_states_, input.Cos, input.Sin);

        var packed_attn_output = input.Cache is { } cache
            ? cache.Attend(packed_query_states_, packed_key_states_, packed_value_states)
            : PackedScaledDotProductAttention.Forward(packed_query_states_, packed_key_states_, packed_value_states, input.AttentionMask);
        var packed_attn_output_ = routing.Merge(
            o_proj.call(routing.SelectUnd(packed_attn_output)),
            o_proj_moe_gen.call(routing.SelectGen(packed_attn_output)),
            length);
        return packed_attn_output_.MoveToOuterDisposeScope();
    }

    /// <summary><c>out[und] = norm(x[und])</c> (detached under freeze_und), <c>out[gen] = norm_moe_gen(x[gen])</c>;
    /// without qk_norm both norms are the identity.</summary>
    private torch.Tensor NormPerExpert(Qwen2TokenRouting routing, torch.Tensor states, Qwen2RMSNorm? und, Qwen2RMSNorm? gen)
    {
        var und_rows = routing.SelectUnd(states);
        und_rows = und?.forward(und_rows) ?? und_rows;
        if (_freezeUnd) und_rows = und_rows.detach();
        var gen_rows = routing.SelectGen(states);
        gen_rows = gen?.forward(gen_rows) ?? gen_rows;
        return routing.Merge(und_rows, gen_rows, states.shape[0]);
    }
}
