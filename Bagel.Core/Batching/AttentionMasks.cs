using Bagel.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Batching;

/// <summary>
/// The attention rule of a packed sample (model.md 2.6): query q may attend to key k of the same sample iff
/// <c>(k ≤ q or (split(q) = split(k) and mode ∈ {full, noise})) and not (mode(split(k)) = noise and split(q) ≠ split(k))</c>.
/// Text is causal, full images are bidirectional inside and see everything before, noisy images see all earlier
/// non-noise context and themselves and are invisible to every other token. Tokens of different samples never attend
/// to each other, so masks are only ever built per sample (never one dense mask over a whole pack).
/// </summary>
public static class AttentionMasks
{
    /// <summary>Whether query position <paramref name="q"/> may attend to key position <paramref name="k"/> within one sample.</summary>
    /// <param name="sample">The sample's splits.</param>
    /// <param name="q">The query position, 0-based within the sample.</param>
    /// <param name="k">The key position, 0-based within the sample.</param>
    /// <returns>Whether attention is allowed.</returns>
    public static bool Allows(SampleLayout sample, int q, int k)
    {
        ArgumentNullException.ThrowIfNull(sample);
        var (splitQ, _) = SplitOf(sample, q);
        var (splitK, modeK) = SplitOf(sample, k);
        if (modeK == AttentionMode.Noise && splitQ != splitK) return false;
        return k <= q || (splitQ == splitK && modeK != AttentionMode.Causal);
    }

    /// <summary>Builds the sample's boolean mask [L, L] (true = may attend), for debugging, tests and dense fallbacks.</summary>
    /// <param name="sample">The sample's splits.</param>
    /// <param name="device">Where to build it (default CPU).</param>
    /// <returns>A bool tensor the caller owns.</returns>
    public static Tensor BuildDense(SampleLayout sample, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(sample);
        TorchRuntime.EnsureLoaded();
        int length = sample.Length;
        using var scope = torch.NewDisposeScope();
        // Split id and noise flag per position, then the rule as tensor algebra: O(L^2) booleans, no Python-style loops.
        var splitIds = new long[length];
        var isNoise = new bool[length];
        var isCausal = new bool[length];
        int position = 0;
        for (int s = 0; s < sample.Splits.Count; s++)
        {
            for (int i = 0; i < sample.Splits[s].Length; i++, position++)
            {
                splitIds[position] = s;
                isNoise[position] = sample.Splits[s].Mode == AttentionMode.Noise;
                isCausal[position] = sample.Splits[s].Mode == AttentionMode.Causal;
            }
        }
        Device target = device ?? torch.CPU;
        Tensor ids = torch.tensor(splitIds, device: target);
        Tensor sameSplit = ids.unsqueeze(1).eq(ids.unsqueeze(0));
        Tensor positions = torch.arange(length, device: target);
        Tensor causal = positions.unsqueeze(1).ge(positions.unsqueeze(0));
        Tensor keyNoise = torch.tensor(isNoise, device: target).unsqueeze(0);
        Tensor keyBidirectional = torch.tensor(isCausal, device: target).logical_not().unsqueeze(0);
        Tensor allowed = causal.logical_or(sameSplit.logical_and(keyBidirectional))
                               .logical_and(keyNoise.logical_and(sameSplit.logical_not()).logical_not());
        return allowed.MoveToOuterDisposeScope();
    }

    private static (int Split, AttentionMode Mode) SplitOf(SampleLayout sample, int position)
    {
        if (position < 0 || position >= sample.Length)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"The sample has {sample.Length} positions.");
        int start = 0;
        for (int s = 0; s < sample.Splits.Count; s++)
        {
            if (position < start + sample.Splits[s].Length) return (s, sample.Splits[s].Mode);
            start += sample.Splits[s].Length;
        }
        throw new InvalidOperationException("Split lengths do not cover the sample.");
    }
}
