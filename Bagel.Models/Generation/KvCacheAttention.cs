using TorchSharp;

namespace Bagel.Models.Generation;

/// <summary>
/// How one decoder layer attends during inference (the reference's <c>forward_inference</c> attention): the query
/// segment's keys/values are appended after the layer's cached prefix, every query attends to the whole prefix and,
/// within the segment, either causally (<see cref="Causal"/>, text) or fully (an image's tokens). Causal alignment
/// is bottom-right (query j of n sees keys up to prefix + j), as flash-attn's varlen kernel does.
/// </summary>
/// <param name="Cache">The cache of the context being extended or queried.</param>
/// <param name="Layer">The decoder layer index.</param>
/// <param name="Causal">Causal within the query segment (text prefill) or full (image tokens).</param>
/// <param name="Update">Whether the merged keys/values replace the layer's cache entry (prefill) or are dropped
/// (a sampler step).</param>
public sealed record KvCacheAttention(KvCache Cache, int Layer, bool Causal, bool Update)
{
    /// <summary>Attends the query segment to the cached prefix plus itself.</summary>
    /// <param name="query">[n, heads, hd] after norms and RoPE.</param>
    /// <param name="key">[n, kv_heads, hd] after norms and RoPE.</param>
    /// <param name="value">[n, kv_heads, hd].</param>
    /// <returns>[n, heads·hd].</returns>
    /// <exception cref="ArgumentException">The shapes disagree with each other or with the cache.</exception>
    public torch.Tensor Attend(torch.Tensor query, torch.Tensor key, torch.Tensor value)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        long n = query.shape[0], heads = query.shape[1], headDim = query.shape[2], kvHeads = key.shape[1];
        if (query.dim() != 3 || key.dim() != 3 || value.dim() != 3 || key.shape[0] != n || value.shape[0] != n
            || kvHeads == 0 || heads % kvHeads != 0 || value.shape[1] != kvHeads)
            throw new ArgumentException(
                $"Cached attention got q [{string.Join(", ", query.shape)}], k [{string.Join(", ", key.shape)}], v [{string.Join(", ", value.shape)}]; expected [n, heads, hd] and [n, kv_heads, hd] with heads a multiple of kv_heads.");
        using var scope = torch.NewDisposeScope();
        torch.Tensor? pastKeys = Cache.KeysOf(Layer), pastValues = Cache.ValuesOf(Layer);
        torch.Tensor keys = pastKeys is null ? key : torch.cat([pastKeys.to(key.dtype), key], 0);
        torch.Tensor values = pastValues is null ? value : torch.cat([pastValues.to(value.dtype), value], 0);
        long total = keys.shape[0], groups = heads / kvHeads;

        var q = query.transpose(0, 1);
        var k = keys.transpose(0, 1);
        var v = values.transpose(0, 1);
        if (groups > 1)
        {
            k = k.repeat_interleave(groups, dim: 0);
            v = v.repeat_interleave(groups, dim: 0);
        }
        torch.Tensor output;
        if (Causal)
        {
            // allowed[j, m] = m <= j + (total - n): the whole prefix plus the segment's own past.
            var rows = torch.arange(n, device: query.device).unsqueeze(1);
            var cols = torch.arange(total, device: query.device).unsqueeze(0);
            var blocked = cols.gt(rows.add(total - n));
            var mask = torch.zeros(n, total, query.dtype, query.device).masked_fill(blocked, float.NegativeInfinity);
            output = torch.nn.functional.scaled_dot_product_attention(q, k, v, mask);
        }
        else
        {
            output = torch.nn.functional.scaled_dot_product_attention(q, k, v);
        }
        if (Update) Cache.Set(Layer, keys, values);
        return output.transpose(0, 1).reshape(n, heads * headDim).MoveToOuterDisposeScope();
    }
}
