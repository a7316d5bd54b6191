using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Siglip;

/// <summary>
/// The reference's <c>SiglipFlashAttention2</c> (model.md §3 step 4): q/k/v/out projections with bias, heads of
/// hd = hidden / heads, scale 1/sqrt(hd), bidirectional within each image (<see cref="SiglipVarlenAttention"/>).
/// q/k/v are rounded to bf16 first when <see cref="SiglipVisionConfig.RoundAttentionInputsToBFloat16"/> (the
/// reference's cast before flash-attn).
/// </summary>
public sealed class SiglipAttention : torch.nn.Module<torch.Tensor, IReadOnlyList<long>, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear q_proj;
    private readonly Linear out_proj;
#pragma warning restore IDE1006
    private readonly SiglipVisionConfig _config;

    /// <summary>Creates the attention block.</summary>
    /// <param name="config">The tower config.</param>
    public SiglipAttention(SiglipVisionConfig config) : base(nameof(SiglipAttention))
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        k_proj = torch.nn.Linear(config.HiddenSize, config.HiddenSize);
        v_proj = torch.nn.Linear(config.HiddenSize, config.HiddenSize);
        q_proj = torch.nn.Linear(config.HiddenSize, config.HiddenSize);
        out_proj = torch.nn.Linear(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>The query projection (exposed for tests and freezing).</summary>
    public Linear QProj => q_proj;

    /// <summary>Attends within each image.</summary>
    /// <param name="hidden_states">[N, hidden].</param>
    /// <param name="seqlens">Patches per image (sum N).</param>
    /// <returns>[N, hidden].</returns>
    public override torch.Tensor forward(torch.Tensor hidden_states, IReadOnlyList<long> seqlens)
    {
        using var scope = torch.NewDisposeScope();
        var states = hidden_states.to(q_proj.weight!.dtype);
        long total_q_len = states.shape[0];
        var query_states = Heads(q_proj.call(states), total_q_len);
        var key_states = Heads(k_proj.call(states), total_q_len);
        var value_states = Heads(v_proj.call(states), total_q_len);
        var attn_output = SiglipVarlenAttention.Forward(query_states, key_states, value_states, seqlens);
        return out_proj.call(attn_output.to(out_proj.weight!.dtype)).MoveToOuterDisposeScope();
    }

    private torch.Tensor Heads(torch.Tensor projected, long length)
    {
        var states = projected.view(length, _config.NumAttentionHeads, _config.HeadDim);
        // The reference casts q/k/v to bf16 for flash-attn; rounding keeps that precision loss (and the matching bf16
        // rounding of their gradients) while the kernel runs in the tower's dtype.
        return _config.RoundAttentionInputsToBFloat16 && states.dtype != torch.bfloat16
            ? states.to(torch.bfloat16).to(states.dtype)
            : states;
    }
}
