using TorchSharp;

namespace Bagel.Training.Ema;

/// <summary>
/// The EMA arithmetic shared by <see cref="EmaModel"/> and <see cref="EmaTensors"/>:
/// <c>ema = decay·ema + (1−decay)·param</c>, in that operation order (multiply, then add with alpha), as the reference's
/// <c>_foreach_mul_</c> / <c>_foreach_add_</c> pair, so results match it bit for bit. TorchSharp 0.107 has no
/// <c>_foreach</c> ops, so this is a loop under no_grad in a dispose scope.
/// </summary>
public static class EmaUpdate
{
    /// <summary>Updates each EMA tensor from its live parameter where that parameter requires grad; returns how many were updated.</summary>
    public static int Apply(IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)> pairs, double decay)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        CheckDecay(decay);
        int updated = 0;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        foreach ((torch.Tensor ema, torch.Tensor live) in pairs)
        {
            // Frozen parts keep their loaded EMA values (training.md 5.5).
            if (!live.requires_grad) continue;
            ema.mul_(decay).add_(live.detach(), alpha: 1.0 - decay);
            updated++;
        }
        return updated;
    }

    /// <summary>Throws unless <paramref name="decay"/> is in [0, 1].</summary>
    public static void CheckDecay(double decay)
    {
        if (!(decay is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(decay), decay, "EMA decay (the 'ema' option) must be in [0, 1].");
    }
}
