using Bagel.Models.Attention;
using Bagel.Models.Generation;
using TorchSharp;

namespace Bagel.Models.Qwen2;

/// <summary>What every packed decoder layer (and its attention) reads: the reference's <c>forward_train</c> arguments.</summary>
/// <param name="PackedSequence">[L, H] hidden states.</param>
/// <param name="AttentionMask">The per-sample attention structure of the pack.</param>
/// <param name="Cos">RoPE cos [L, hd] (hidden dtype).</param>
/// <param name="Sin">RoPE sin [L, hd] (hidden dtype).</param>
/// <param name="Routing">The und/gen split; null for the dense layer.</param>
/// <param name="Cache">Inference only: attend to a cached prefix instead of within <paramref name="AttentionMask"/>
/// (the reference's <c>forward_inference</c>); null in training.</param>
public sealed record Qwen2LayerInput(
    torch.Tensor PackedSequence,
    PackedAttentionMask AttentionMask,
    torch.Tensor Cos,
    torch.Tensor Sin,
    Qwen2TokenRouting? Routing,
    KvCacheAttention? Cache = null)
{
    /// <summary>The routing, required by MoE/MoT modules.</summary>
    /// <param name="module">The asking module, for the message.</param>
    /// <returns>The routing.</returns>
    /// <exception cref="Qwen2InputException">No routing was given.</exception>
    public Qwen2TokenRouting RequireRouting(string module) =>
        Routing ?? throw new Qwen2InputException($"{module} routes tokens to und/gen experts and needs packed_und_token_indexes; pass them in Qwen2PackedInput.");
}
