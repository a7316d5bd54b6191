using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Optimization;

/// <summary>Global gradient-norm clipping, as the reference's <c>clip_grad_norm_(max_grad_norm)</c>, and the norm alone.</summary>
public static class GradientClipping
{
    /// <summary>
    /// The total gradient norm of <paramref name="parameters"/>, as if all their gradients were one vector, without
    /// changing any gradient (what <see cref="ClipGradNorm(IEnumerable{Parameter}, double)"/> returns, for logging or a custom loop's own decision).
    /// Computed as libtorch's <c>clip_grad_norm_</c> does: the norm of each gradient, then the norm of those norms
    /// (the maximum of absolute values for an infinite <paramref name="normType"/>). Parameters without a gradient are
    /// ignored; none at all gives 0. A non-finite result is returned as is.
    /// </summary>
    /// <param name="parameters">The parameters whose gradients are measured.</param>
    /// <param name="normType">The p of the p-norm (default 2; <see cref="double.PositiveInfinity"/> for the max norm).</param>
    /// <returns>The total norm.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="normType"/> is not positive (or is NaN).</exception>
    public static double ComputeTotalNorm(IEnumerable<Parameter> parameters, double normType = 2)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(normType > 0)) throw new ArgumentOutOfRangeException(nameof(normType), normType, "The norm type must be positive (or +infinity).");
        Parameter[] withGrad = [.. parameters.Where(p => p.grad is not null)];
        if (withGrad.Length == 0) return 0.0;
        using var scope = torch.NewDisposeScope();
        return AsDouble(TotalNorm(withGrad, normType));
    }

    /// <summary>
    /// Scales the gradients of <paramref name="parameters"/> in place so that their global L2 norm is at most
    /// <paramref name="maxNorm"/>; returns the norm before clipping (the reference's <c>total_norm</c>, the same value
    /// as <see cref="ComputeTotalNorm"/>). Every gradient is multiplied by <c>min(1, maxNorm / (norm + 1e-6))</c>, as
    /// libtorch does. Parameters without a gradient are ignored. A non-finite norm is returned as is (and spreads to
    /// the gradients); check it before stepping.
    /// </summary>
    /// <param name="parameters">The parameters whose gradients are clipped.</param>
    /// <param name="maxNorm">The largest total norm allowed.</param>
    /// <returns>The total norm before clipping.</returns>
    public static double ClipGradNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNorm);
        Parameter[] withGrad = [.. parameters.Where(p => p.grad is not null)];
        if (withGrad.Length == 0) return 0.0;
        using var scope = torch.NewDisposeScope();
        torch.Tensor total = TotalNorm(withGrad, 2);
        torch.Tensor coefficient = Coefficient(total, maxNorm);
        using (torch.no_grad())
        {
            foreach (Parameter parameter in withGrad) parameter.grad!.mul_(coefficient);
        }
        return AsDouble(total);
    }

    /// <summary>
    /// <see cref="ClipGradNorm(IEnumerable{Parameter}, double)"/> over <paramref name="optimizer"/>'s parameters. When it
    /// is a <see cref="FlatBufferAdamW"/> whose gradients all view its flat gradient buffers, the norm is computed the
    /// same way (one norm per gradient, then the norm of those) and the scaling runs once per buffer instead of once per
    /// gradient: the same element-wise product, so the same bits, with far fewer kernel launches.
    /// </summary>
    /// <param name="optimizer">The optimizer whose parameters' gradients are clipped.</param>
    /// <param name="maxNorm">The largest total norm allowed.</param>
    /// <returns>The total norm before clipping.</returns>
    public static double ClipGradNorm(AdamW optimizer, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (optimizer is not FlatBufferAdamW flat || flat.GradientBuffers() is not { } buffers)
            return ClipGradNorm(optimizer.parameters(), maxNorm);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNorm);
        Parameter[] withGrad = [.. optimizer.parameters()]; // every one has a gradient: GradientBuffers checked it
        if (withGrad.Length == 0) return 0.0;
        using var scope = torch.NewDisposeScope();
        torch.Tensor total = TotalNorm(withGrad, 2);
        torch.Tensor coefficient = Coefficient(total, maxNorm);
        using (torch.no_grad())
        {
            foreach (torch.Tensor buffer in buffers) buffer.mul_(coefficient);
        }
        return AsDouble(total);
    }

    /// <summary>
    /// The norm and clip coefficient of <paramref name="optimizer"/>'s gradients, without scaling them, for
    /// <see cref="OptimizerStepper"/> to fold the scaling into the fused pass: the norm exactly as
    /// <see cref="ClipGradNorm(AdamW, double)"/> computes and returns it, and its coefficient <c>min(1, maxNorm / (norm +
    /// 1e-6))</c> both as the tensor that method multiplies by (owned by the caller; null without parameters) and as read on the host, with the
    /// norm in one read. Every gradient must view the flat buffers (<see cref="FlatBufferAdamW.GradientBuffers"/> not null).
    /// </summary>
    internal static (double Norm, double Coefficient, torch.Tensor? CoefficientTensor) NormAndCoefficient(FlatBufferAdamW optimizer, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNorm);
        Parameter[] withGrad = [.. optimizer.parameters()];
        using var scope = torch.NewDisposeScope();
        if (withGrad.Length == 0) return (0.0, 1.0, null); // nothing to clip, as ClipGradNorm
        torch.Tensor total = TotalNorm(withGrad, 2);
        torch.Tensor coefficient = Coefficient(total, maxNorm);
        // One read for both, as doubles (a float32 norm converts exactly, as item<float> gives it).
        double[] host = Loop.HostSync.Read(torch.stack([total.to(torch.float64), coefficient.to(torch.float64)]));
        return (host[0], host[1], coefficient.MoveToOuterDisposeScope());
    }

    /// <summary>The norm as a double: a float32 norm exactly as <c>item&lt;float&gt;</c> gives it; mixed dtypes (a float64 norm) keep their precision.</summary>
    private static double AsDouble(torch.Tensor total)
    {
        Loop.HostSync.Count(); // the NaN guard needs the norm on the host before AdamW steps
        using torch.Tensor wide = total.to(torch.float64);
        return wide.item<double>();
    }

    private static torch.Tensor Coefficient(torch.Tensor total, double maxNorm)
    {
        // maxNorm / (total + 1e-6) as libtorch's C++ evaluates a scalar over a tensor: a tensor filled with maxNorm,
        // divided by the other (Python's reciprocal-times-scalar can differ in the last bit).
        torch.Tensor denominator = total.add(1e-6);
        return torch.full_like(denominator, maxNorm).div_(denominator).clamp_max(1.0);
    }

    private static torch.Tensor TotalNorm(Parameter[] withGrad, double normType)
    {
        using var noGrad = torch.no_grad();
        bool max = double.IsPositiveInfinity(normType);
        torch.Tensor[] grads = [.. withGrad.Select(p => p.grad!)];
        int? threads = SharedOut(grads);
        torch.Tensor[] norms = threads is { } n ? NormsOnThreads(grads, normType, n) : [.. grads.Select(g => Norm(g, normType))];
        try
        {
            if (norms.Length == 1) return norms[0]; // as libtorch: a single gradient's norm is the total (never shared out)
            return max ? torch.stack(norms).max() : torch.stack(norms).norm((float)normType);
        }
        finally
        {
            if (threads is not null) foreach (torch.Tensor norm in norms) norm.Dispose(); // made by the workers, in no scope
        }
    }

    private static long s_sharedOutNorms;

    /// <summary>How many total norms this process computed with the per-gradient norms shared out over threads (for tests).</summary>
    internal static long SharedOutNorms => Interlocked.Read(ref s_sharedOutNorms);

    /// <summary>Gradient elements from which the per-gradient norms are shared out over threads (below it, starting threads costs more than it saves).</summary>
    private const long SharedOutElements = 1 << 22;

    private static torch.Tensor Norm(torch.Tensor grad, double normType)
    {
        if (!double.IsPositiveInfinity(normType)) return grad.norm((float)normType);
        using torch.Tensor magnitude = grad.abs();
        return magnitude.max();
    }

    /// <summary>
    /// The number of threads to share the per-gradient norms out over, or null to compute them one after another: CPU
    /// gradients only (on a GPU the kernels queue on one stream anyway), at least two of them, at least
    /// <see cref="SharedOutElements"/> elements, and more than one torch thread.
    /// </summary>
    private static int? SharedOut(torch.Tensor[] grads)
    {
        if (grads.Length < 2) return null;
        int threads = Math.Min(torch.get_num_threads(), Environment.ProcessorCount);
        if (threads < 2) return null;
        long elements = 0;
        foreach (torch.Tensor grad in grads)
        {
            if (grad.device_type != DeviceType.CPU) return null;
            elements += grad.numel();
        }
        return elements >= SharedOutElements ? Math.Min(threads, grads.Length) : null;
    }

    /// <summary>
    /// One norm per gradient, in the gradients' order, computed on <paramref name="threads"/> threads, largest gradient
    /// first. libtorch reduces a whole tensor to one value with one accumulator on the thread that calls it, so a
    /// gradient's norm never uses more than one core: the 136 M-element embedding gradient of a Qwen2 vocabulary took
    /// ~50 ms at ~10 GB/s while the other core idled. Every worker holds the caller's torch thread count (the setting is
    /// per thread and decides how a reduction splits), so each norm has the bits it has on the caller's thread. The
    /// returned tensors belong to no dispose scope: the caller disposes them.
    /// </summary>
    private static torch.Tensor[] NormsOnThreads(torch.Tensor[] grads, double normType, int threads)
    {
        int callerThreads = torch.get_num_threads();
        int[] largestFirst = [.. Enumerable.Range(0, grads.Length).OrderByDescending(i => grads[i].numel())];
        var norms = new torch.Tensor[grads.Length];
        int next = -1;
        Interlocked.Increment(ref s_sharedOutNorms);
        try
        {
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            {
                using Loop.TorchThreadScope count = Loop.TorchThreadScope.Enter(callerThreads);
                using var noGrad = torch.no_grad();
                for (int i = Interlocked.Increment(ref next); i < largestFirst.Length; i = Interlocked.Increment(ref next))
                {
                    int k = largestFirst[i];
                    norms[k] = Norm(grads[k], normType);
                }
            });
        }
        catch
        {
            foreach (torch.Tensor? norm in norms) norm?.Dispose();
            throw;
        }
        return norms;
    }
}
