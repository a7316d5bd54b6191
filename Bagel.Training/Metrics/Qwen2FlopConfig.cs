namespace Bagel.Training.Metrics;

/// <summary>The LLM sizes the reference's FLOPs estimate reads from a Qwen2 config (training.md 5.6).</summary>
/// <param name="HiddenSize">h (<c>hidden_size</c>).</param>
/// <param name="IntermediateSize">i (<c>intermediate_size</c>).</param>
/// <param name="NumHiddenLayers">Layers (<c>num_hidden_layers</c>).</param>
/// <param name="NumAttentionHeads">Query heads (<c>num_attention_heads</c>).</param>
/// <param name="NumKeyValueHeads">Key/value heads (<c>num_key_value_heads</c>).</param>
/// <param name="VocabSize">Vocabulary size (<c>vocab_size</c>).</param>
/// <param name="HeadDim">Head size; null means <c>hidden_size / num_attention_heads</c>, as the reference.</param>
public sealed record Qwen2FlopConfig(long HiddenSize, long IntermediateSize, long NumHiddenLayers, long NumAttentionHeads,
    long NumKeyValueHeads, long VocabSize, long? HeadDim = null)
{
    /// <summary>The head size in use.</summary>
    public long ResolvedHeadDim => HeadDim ?? HiddenSize / NumAttentionHeads;

    /// <summary>
    /// N_dense: per layer the MLP (3·h·i) and the q, k, v, o projections (h·(q+k+v+o)), times the layers, plus the
    /// embedding and <c>lm_head</c> (2·vocab·h).
    /// </summary>
    public double DenseParameters
    {
        get
        {
            long headDim = ResolvedHeadDim;
            double q = NumAttentionHeads * headDim, kv = NumKeyValueHeads * headDim, o = NumAttentionHeads * headDim;
            double mlp = 3.0 * HiddenSize * IntermediateSize;
            double attention = HiddenSize * (q + kv + kv + o);
            return (mlp + attention) * NumHiddenLayers + 2.0 * VocabSize * HiddenSize;
        }
    }

    /// <summary>FLOPs per token of the dense part: 6·N_dense.</summary>
    public double DenseTokenFactor => 6.0 * DenseParameters;

    /// <summary>FLOPs per squared sample length of attention: 12·head_dim·heads·layers.</summary>
    public double AttentionFactor => 12.0 * ResolvedHeadDim * NumAttentionHeads * NumHiddenLayers;
}
