using TorchSharp;

namespace Bagel.Models.Siglip;

/// <summary>
/// Bidirectional attention within each image of a packed ViT sequence: what the reference gets from
/// <c>flash_attn_varlen_func(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, causal=False)</c>, i.e.
/// <c>softmax(q kᵀ / sqrt(hd)) v</c> over the patches of the same image only.
/// </summary>
/// <remarks>
/// One fused SDPA call per image without any mask: every patch sees every patch of its own image, so no mask is
/// needed (unlike <see cref="global::Bagel.Models.Attention.PackedScaledDotProductAttention"/>, whose per-sample masks
/// encode the LLM's causal/full/noise splits and would only add an all-true Ls × Ls mask here).
/// </remarks>
public static class SiglipVarlenAttention
{
    /// <summary>Attends within each image.</summary>
    /// <param name="query">[N, heads, hd].</param>
    /// <param name="key">[N, heads, hd].</param>
    /// <param name="value">[N, heads, hd].</param>
    /// <param name="seqlens">Patches per image, in pack order (the reference's <c>vit_token_seqlens</c>); they sum to N.</param>
    /// <returns>[N, heads·hd], rows in pack order, in the dtype of q/k/v.</returns>
    /// <exception cref="SiglipInputException">Shapes disagree or the lengths do not sum to N.</exception>
    public static torch.Tensor Forward(torch.Tensor query, torch.Tensor key, torch.Tensor value, IReadOnlyList<long> seqlens)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(seqlens);
        if (query.dim() != 3 || !key.shape.SequenceEqual(query.shape) || !value.shape.SequenceEqual(query.shape)
            || seqlens.Any(n => n <= 0) || seqlens.Sum() != query.shape[0])
            throw new SiglipInputException(
                $"ViT attention got q [{string.Join(", ", query.shape)}], k [{string.Join(", ", key.shape)}], v [{string.Join(", ", value.shape)}] "
                + $"and image lengths [{string.Join(", ", seqlens)}]; expected three equal [N, heads, hd] tensors and positive lengths summing to N.");
        long length = query.shape[0], width = query.shape[1] * query.shape[2];

        using var scope = torch.NewDisposeScope();
        var outputs = new List<torch.Tensor>(seqlens.Count);
        long start = 0;
        foreach (long n in seqlens)
        {
            var q = query.narrow(0, start, n).transpose(0, 1);
            var k = key.narrow(0, start, n).transpose(0, 1);
            var v = value.narrow(0, start, n).transpose(0, 1);
            outputs.Add(torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(0, 1));
            start += n;
        }
        return torch.cat(outputs, 0).reshape(length, width).MoveToOuterDisposeScope();
    }
}
