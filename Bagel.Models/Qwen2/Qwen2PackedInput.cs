using Bagel.Core.Batching;
using TorchSharp;

namespace Bagel.Models.Qwen2;

/// <summary>
/// One packed forward pass of the backbone (the reference's <c>Qwen2ForCausalLM.forward_train</c> arguments). The
/// BAGEL composite builds <see cref="PackedSequence"/> by scattering text embeddings, ViT tokens and noised VAE
/// tokens into their positions (model.md §1.2 steps 1-5).
/// </summary>
/// <param name="PackedSequence">[L, H] input hidden states.</param>
/// <param name="Samples">The samples of the pack with their attention splits (<c>sample_lens</c>, <c>split_lens</c>, <c>attn_modes</c>).</param>
/// <param name="PackedPositionIds">[L] int64 RoPE positions (restart per sample).</param>
/// <param name="PackedUndTokenIndexes">Ascending und positions; required for MoE/MoT layers, ignored by the dense layer
/// except with <c>freeze_und</c> (where, as in the reference, its absence detaches the whole input).</param>
/// <param name="PackedGenTokenIndexes">Ascending gen positions; null means none.</param>
public sealed record Qwen2PackedInput(
    torch.Tensor PackedSequence,
    IReadOnlyList<SampleLayout> Samples,
    torch.Tensor PackedPositionIds,
    torch.Tensor? PackedUndTokenIndexes = null,
    torch.Tensor? PackedGenTokenIndexes = null);
