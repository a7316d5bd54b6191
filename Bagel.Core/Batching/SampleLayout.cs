namespace Bagel.Core.Batching;

/// <summary>
/// One sample of a packed batch: its length (the reference's <c>sample_lens</c> entry) and its splits (its
/// <c>split_lens</c> / <c>attn_modes</c>). Attention is built from this structure, never from dense masks.
/// </summary>
/// <param name="Length">The sample's token count; must equal the sum of the split lengths.</param>
/// <param name="Splits">The splits in sequence order.</param>
public sealed record SampleLayout(int Length, IReadOnlyList<AttentionSplit> Splits)
{
    /// <summary>A layout whose length is the sum of <paramref name="splits"/>.</summary>
    /// <param name="splits">The splits in sequence order.</param>
    /// <returns>The layout.</returns>
    public static SampleLayout FromSplits(params AttentionSplit[] splits) => new(splits.Sum(s => s.Length), splits);
}
