namespace Bagel.Core.Batching;

/// <summary>One split of a packed sample: a run of consecutive tokens sharing an attention mode (one plan item).</summary>
/// <param name="Length">The number of tokens (markers included), at least 1.</param>
/// <param name="Mode">The attention mode.</param>
public readonly record struct AttentionSplit(int Length, AttentionMode Mode);
