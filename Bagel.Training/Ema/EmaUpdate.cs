using TorchSharp;

namespace Bagel.Training.Ema;

/// <summary>
/// The EMA arithmetic shared by <see cref="EmaModel"/> and <see cref="EmaTensors"/>:
/// <c>ema = decay·ema + (1−decay)·param</c>, in that operation order (multiply, then add with alpha), as the reference's
/// <c>_foreach_mul_</c> / <c>_foreach_add_</c> pair, so results match it bit for bit. TorchSharp 0.107 has no
/// <c>_foreach</c> ops; instead, by default, pairs whose EMA tensors and live parameters each lie end to end in one
/// storage (the EMA's flat buffers and <see cref="Optimization.FlatBufferAdamW"/>'s) are updated with one multiply and
/// one add per run: the same element-wise operations, so the same bits, with a launch per flat buffer instead of two
/// per tensor. Any other pair is updated on its own.
/// </summary>
public static class EmaUpdate
{
    /// <summary>Updates each EMA tensor from its live parameter where that parameter requires grad (fused where the layout allows); returns how many were updated.</summary>
    public static int Apply(IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)> pairs, double decay) => Apply(pairs, decay, fused: true);

    /// <summary>
    /// Updates each EMA tensor from its live parameter where that parameter requires grad; returns how many were
    /// updated. With <paramref name="fused"/> (the default of the other overload), runs of pairs that lie end to end
    /// in flat buffers take one update each; without, every tensor takes its own. Both give the same bits.
    /// </summary>
    public static int Apply(IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)> pairs, double decay, bool fused) =>
        ApplyCounted(pairs, decay, fused).Tensors;

    /// <summary>As <see cref="Apply(IReadOnlyList{ValueTuple{torch.Tensor, torch.Tensor}}, double, bool)"/>; also returns the number of multiply-add pairs it took.</summary>
    internal static (int Tensors, int Operations) ApplyCounted(IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)> pairs, double decay, bool fused)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        CheckDecay(decay);
        using var noGrad = torch.no_grad();
        if (fused) return FlatEmaLayout.ForEachRun(pairs, (ema, live) => ema.mul_(decay).add_(live, alpha: 1.0 - decay));
        int updated = 0;
        using var scope = torch.NewDisposeScope();
        foreach ((torch.Tensor ema, torch.Tensor live) in pairs)
        {
            // Frozen parts keep their loaded EMA values (training.md 5.5).
            if (!live.requires_grad) continue;
            ema.mul_(decay).add_(live.detach(), alpha: 1.0 - decay);
            updated++;
        }
        return (updated, updated);
    }

    /// <summary>
    /// As <see cref="ApplyCounted"/> for the pairs not marked in <paramref name="covered"/> (the fused AdamW pass updated
    /// those with the same arithmetic); the tensors returned count the covered ones too.
    /// </summary>
    internal static (int Tensors, int Operations) ApplyRemaining(IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)> pairs, bool[] covered, double decay, bool fused)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(covered);
        if (covered.Length != pairs.Count) throw new ArgumentException($"{covered.Length} flags for {pairs.Count} EMA pairs.", nameof(covered));
        int done = covered.Count(c => c);
        if (done == 0) return ApplyCounted(pairs, decay, fused);
        (int tensors, int operations) = ApplyCounted([.. pairs.Where((_, i) => !covered[i])], decay, fused);
        return (tensors + done, operations);
    }

    /// <summary>Throws unless <paramref name="decay"/> is in [0, 1].</summary>
    public static void CheckDecay(double decay)
    {
        if (!(decay is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(decay), decay, "EMA decay (the 'ema' option) must be in [0, 1].");
    }
}
