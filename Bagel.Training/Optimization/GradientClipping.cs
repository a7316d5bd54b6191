using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Optimization;

/// <summary>Global gradient-norm clipping, as the reference's <c>clip_grad_norm_(max_grad_norm)</c>.</summary>
public static class GradientClipping
{
    /// <summary>
    /// Scales the gradients of <paramref name="parameters"/> in place so that their global L2 norm is at most
    /// <paramref name="maxNorm"/>; returns the norm before clipping (the reference's <c>total_norm</c>). Parameters
    /// without a gradient are ignored. A non-finite norm is returned as is; check it before stepping.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNorm);
        Parameter[] withGrad = [.. parameters.Where(p => p.grad is not null)];
        return withGrad.Length == 0 ? 0.0 : torch.nn.utils.clip_grad_norm_(withGrad, maxNorm);
    }
}
