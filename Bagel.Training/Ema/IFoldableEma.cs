namespace Bagel.Training.Ema;

/// <summary>
/// An EMA whose update <see cref="Optimization.OptimizerStepper"/> may fold into the flat optimizer's fused pass: it
/// exposes its (EMA, live) pairs, the pass updates the pairs whose live tensor it steps, and
/// <see cref="UpdateRemaining"/> does the rest exactly as <see cref="IExponentialMovingAverage.Update"/> would.
/// </summary>
internal interface IFoldableEma
{
    /// <summary>True when the update may be folded: the fused (flat) EMA; the per-tensor one keeps its separate update.</summary>
    bool CanFold { get; }

    /// <summary>The decay.</summary>
    double Decay { get; }

    /// <summary>The (EMA, live) pairs, in update order.</summary>
    IReadOnlyList<(TorchSharp.torch.Tensor Ema, TorchSharp.torch.Tensor Live)> Pairs { get; }

    /// <summary>
    /// The update for the pairs not marked in <paramref name="covered"/> (the fused pass already updated those);
    /// returns how many tensors were averaged in all, as <see cref="IExponentialMovingAverage.Update"/>.
    /// </summary>
    int UpdateRemaining(bool[] covered);
}
