using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Optimization;

/// <summary>
/// <see cref="AdamWUpdate.Apply"/> as one pass over contiguous float32 CPU buffers: each element's parameter, gradient
/// and moments are read once and the parameter and moments written once (28 bytes per element, against about 60 for
/// libtorch's nine kernels), on <c>torch.get_num_threads()</c> threads.
/// <para>
/// Every value is rounded as libtorch rounds it, so the results are bit for bit libtorch's: <c>mul_</c> and
/// <c>div</c> by a scalar round once per operation; <c>add_(grad, alpha)</c> and <c>addcmul_</c> are fused
/// multiply-adds in libtorch's CPU kernels (its vectorised <c>fmadd</c>, and the compiler contracts the scalar tails
/// the same way), so they are here; <c>addcdiv_</c> adds a rounded quotient. The square root is the one exception
/// that arithmetic cannot reproduce: with MKL (the official x86 builds) libtorch's float32 <c>sqrt</c> is MKL's
/// <c>vsSqrt</c> in high-accuracy mode, which is not the correctly rounded IEEE root for about 0.7 % of inputs. The
/// kernel calls that same MKL function, from libtorch's own library, for each block of square roots.
/// </para>
/// <para>
/// On first use a calibration compares libtorch's <c>sqrt</c> with MKL's and with the IEEE root and keeps the one that
/// matches on every input, then runs the whole kernel against <see cref="AdamWUpdate.Apply"/> on random buffers
/// with several settings. If either check differs by a single bit (another libtorch build, another CPU), the
/// kernel stays off for the process and <see cref="UnavailableReason"/> says why; the caller then runs libtorch's
/// operations, so the results never depend on whether the kernel ran.
/// </para>
/// </summary>
internal static unsafe class FusedAdamWKernel
{
    /// <summary>
    /// Elements per block: the block's square roots go to a stack scratch of 8 KiB, and the block of the four buffers
    /// with it (40 KiB) stays in a core's L1 cache between the moment pass, the square roots and the parameter pass.
    /// </summary>
    private const int BlockElements = 2048;

    /// <summary>Elements per unit of parallel work: 64 Ki (256 KiB per buffer), large enough that scheduling costs nothing.</summary>
    private const long TileElements = 1 << 16;

    // The mode libtorch passes to MKL's vector math (aten/src/ATen/cpu/vml.h): VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE
    // (mkl_vml_defines.h: 0x2, 0x140000, 0x100).
    private const long VmlHighAccuracy = 0x2, VmlFtzDazOff = 0x140000, VmlErrorModeIgnore = 0x100;
    private const long VmlMode = VmlHighAccuracy | VmlFtzDazOff | VmlErrorModeIgnore;

    /// <summary>Elements of each calibration buffer: odd, so that every vector width leaves a tail.</summary>
    private const int CalibrationElements = 20_011;

    private const ulong CalibrationSeed = 20_251_104;

    private enum SquareRoot { Ieee, Mkl }

    private sealed record Calibration(SquareRoot Root, string? Reason);

    private static readonly Lazy<Calibration> s_calibration = new(Calibrate, LazyThreadSafetyMode.ExecutionAndPublication);

    // MKL's ILP64 Fortran entry point (64-bit length and mode by reference), exported by libtorch_cpu: void VMSSQRT_64_(n, a, r, mode).
    private static delegate* unmanaged<long*, float*, float*, long*, void> s_mklSqrt;

    [DllImport("LibTorchSharp", EntryPoint = "THSTensor_data")]
    private static extern IntPtr TensorData(IntPtr tensor);

    /// <summary>Whether the kernel passed its calibration in this process (runs it on first use).</summary>
    public static bool IsAvailable => s_calibration.Value.Reason is null;

    /// <summary>Why the kernel is off in this process, or null when it is available (runs the calibration on first use).</summary>
    public static string? UnavailableReason => s_calibration.Value.Reason;

    /// <summary>Whether the four buffers are what the kernel steps: one-dimensional, contiguous, float32, on the CPU, of one length.</summary>
    public static bool Fits(torch.Tensor data, torch.Tensor grad, torch.Tensor expAvg, torch.Tensor expAvgSq)
    {
        long n = data.numel();
        foreach (torch.Tensor t in (ReadOnlySpan<torch.Tensor>)[data, grad, expAvg, expAvgSq])
        {
            if (t.device_type != DeviceType.CPU || t.dtype != torch.float32 || t.dim() != 1 || t.numel() != n || !t.is_contiguous()) return false;
        }
        return true;
    }

    /// <summary>
    /// Runs <paramref name="update"/> over the buffers in one pass and returns true, or returns false without touching
    /// them when they do not <see cref="Fits"/> or the kernel is unavailable. Call under no_grad.
    /// </summary>
    public static bool TryApply(in AdamWUpdate update, torch.Tensor data, torch.Tensor grad, torch.Tensor expAvg, torch.Tensor expAvgSq)
    {
        if (!Fits(data, grad, expAvg, expAvgSq) || !IsAvailable) return false;
        Run(Coefficients.Of(update), s_calibration.Value.Root, data, grad, expAvg, expAvgSq);
        return true;
    }

    /// <summary>The update's scalars as libtorch converts them to float32 (round to nearest), in the operations' terms.</summary>
    private readonly record struct Coefficients(float Decay, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
        float DenominatorScale, float Eps, float NegativeStepSize)
    {
        public static Coefficients Of(in AdamWUpdate u) => new((float)u.Decay, (float)u.Beta1, (float)(1 - u.Beta1), (float)u.Beta2,
            (float)(1 - u.Beta2), (float)u.DenominatorScale, (float)u.Eps, (float)-u.StepSize);
    }

    private static void Run(Coefficients c, SquareRoot root, torch.Tensor data, torch.Tensor grad, torch.Tensor expAvg, torch.Tensor expAvgSq)
    {
        long n = data.numel();
        if (n == 0) return;
        nint p = Pointer(data), g = Pointer(grad), m = Pointer(expAvg), v = Pointer(expAvgSq);
        long tiles = (n + TileElements - 1) / TileElements;
        int threads = Math.Clamp(torch.get_num_threads(), 1, Environment.ProcessorCount);
        if (threads == 1 || tiles == 1)
        {
            Range(c, root, p, g, m, v, 0, n);
        }
        else
        {
            Parallel.For(0, tiles, new ParallelOptions { MaxDegreeOfParallelism = threads },
                t => Range(c, root, p, g, m, v, t * TileElements, Math.Min(n, (t + 1) * TileElements)));
        }
        GC.KeepAlive(data);
        GC.KeepAlive(grad);
        GC.KeepAlive(expAvg);
        GC.KeepAlive(expAvgSq);
    }

    private static nint Pointer(torch.Tensor tensor)
    {
        IntPtr pointer = TensorData(tensor.Handle);
        if (pointer == IntPtr.Zero) torch.CheckForErrors();
        return pointer == IntPtr.Zero ? throw new InvalidOperationException("libtorch returned no data pointer for a flat AdamW buffer.") : pointer;
    }

    private static void Range(Coefficients c, SquareRoot root, nint p, nint g, nint m, nint v, long from, long to)
    {
        float* roots = stackalloc float[BlockElements];
        for (long start = from; start < to; start += BlockElements)
        {
            int n = (int)Math.Min(BlockElements, to - start);
            Block(c, root, (float*)p + start, (float*)g + start, (float*)m + start, (float*)v + start, roots, n);
        }
    }

    /// <summary>
    /// One block, in libtorch's order: <c>exp_avg.mul_(β1).add_(grad, 1 − β1)</c>, <c>exp_avg_sq.mul_(β2).addcmul_(grad,
    /// grad, 1 − β2)</c>, <c>denom = sqrt(exp_avg_sq) / scale + ε</c>, <c>param.mul_(decay).addcdiv_(exp_avg, denom,
    /// −step_size)</c>.
    /// </summary>
    private static void Block(Coefficients c, SquareRoot root, float* p, float* g, float* m, float* v, float* roots, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> beta1 = Vector256.Create(c.Beta1), oneMinusBeta1 = Vector256.Create(c.OneMinusBeta1);
            Vector256<float> beta2 = Vector256.Create(c.Beta2), oneMinusBeta2 = Vector256.Create(c.OneMinusBeta2);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> gi = Vector256.Load(g + i);
                Vector256.FusedMultiplyAdd(gi, oneMinusBeta1, Vector256.Load(m + i) * beta1).Store(m + i);
                Vector256.FusedMultiplyAdd(oneMinusBeta2 * gi, gi, Vector256.Load(v + i) * beta2).Store(v + i);
            }
        }
        for (; i < n; i++)
        {
            float gi = g[i];
            m[i] = MathF.FusedMultiplyAdd(gi, c.OneMinusBeta1, m[i] * c.Beta1);
            v[i] = MathF.FusedMultiplyAdd(c.OneMinusBeta2 * gi, gi, v[i] * c.Beta2);
        }

        SquareRoots(root, v, roots, n);

        i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> scale = Vector256.Create(c.DenominatorScale), eps = Vector256.Create(c.Eps);
            Vector256<float> decay = Vector256.Create(c.Decay), step = Vector256.Create(c.NegativeStepSize);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> denominator = Vector256.Load(roots + i) / scale + eps;
                (Vector256.Load(p + i) * decay + step * Vector256.Load(m + i) / denominator).Store(p + i);
            }
        }
        for (; i < n; i++)
        {
            float denominator = roots[i] / c.DenominatorScale + c.Eps;
            p[i] = p[i] * c.Decay + c.NegativeStepSize * m[i] / denominator;
        }
    }

    private static void SquareRoots(SquareRoot root, float* values, float* roots, int n)
    {
        if (root == SquareRoot.Mkl)
        {
            long count = n, mode = VmlMode;
            s_mklSqrt(&count, values, roots, &mode);
            return;
        }
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count) Vector256.Sqrt(Vector256.Load(values + i)).Store(roots + i);
        }
        for (; i < n; i++) roots[i] = MathF.Sqrt(values[i]);
    }

    /// <summary>Picks the square root libtorch computes, then checks the whole kernel against libtorch's operations.</summary>
    private static Calibration Calibrate()
    {
        try
        {
            return CalibrateOrThrow();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new Calibration(SquareRoot.Ieee, $"the fused AdamW pass could not calibrate: {e.Message}");
        }
    }

    private static Calibration CalibrateOrThrow()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var generator = new torch.Generator(CalibrationSeed);
        // Second moments as they occur (tiny), and a spread over many orders of magnitude, with zeros.
        torch.Tensor values = torch.cat([
            torch.rand(CalibrationElements, generator: generator).mul_(1e-6),
            torch.randn(CalibrationElements, generator: generator).mul_(10).exp_(),
            torch.zeros(3)]);
        torch.Tensor expected = values.sqrt();
        SquareRoot? root = null;
        foreach (SquareRoot candidate in (ReadOnlySpan<SquareRoot>)[SquareRoot.Mkl, SquareRoot.Ieee])
        {
            if (candidate == SquareRoot.Mkl && !BindMkl()) continue;
            torch.Tensor actual = torch.empty_like(values);
            float* input = (float*)Pointer(values), output = (float*)Pointer(actual);
            for (long start = 0; start < values.numel(); start += BlockElements)
                SquareRoots(candidate, input + start, output + start, (int)Math.Min(BlockElements, values.numel() - start));
            if (BitIdentical(expected, actual))
            {
                root = candidate;
                break;
            }
        }
        if (root is not { } found)
            return new Calibration(SquareRoot.Ieee, "libtorch's float32 sqrt matched neither MKL's vsSqrt (high accuracy) nor the IEEE square root bit for bit");

        // The whole kernel against AdamWUpdate.Apply: with and without weight decay, early and late steps, several ε.
        (double Lr, double Beta1, double Beta2, double Eps, double WeightDecay, long Step)[] settings =
            [(1e-4, 0.9, 0.95, 1e-15, 0, 1), (3e-2, 0.8, 0.999, 1e-8, 0.1, 7), (2e-3, 0.95, 0.98, 1e-6, 0.05, 1000)];
        foreach (var s in settings)
        {
            var options = new AdamW.Options { LearningRate = s.Lr, beta1 = s.Beta1, beta2 = s.Beta2, eps = s.Eps, weight_decay = s.WeightDecay };
            var update = AdamWUpdate.For(options, s.Step);
            torch.Tensor p = torch.randn(CalibrationElements, generator: generator);
            torch.Tensor g = torch.randn(CalibrationElements, generator: generator).mul_(1e-3);
            torch.Tensor m = torch.randn(CalibrationElements, generator: generator).mul_(1e-3);
            torch.Tensor v = torch.rand(CalibrationElements, generator: generator).mul_(1e-6);
            torch.Tensor p2 = p.clone(), m2 = m.clone(), v2 = v.clone();
            update.Apply(p, g, m, v, torch.empty_like(v));
            Run(Coefficients.Of(update), found, p2, g, m2, v2);
            if (!BitIdentical(m, m2) || !BitIdentical(v, v2) || !BitIdentical(p, p2))
                return new Calibration(found, $"the fused AdamW pass differed from libtorch's operations in a self-check (lr {s.Lr}, betas {s.Beta1}/{s.Beta2}, eps {s.Eps}, weight decay {s.WeightDecay}, step {s.Step})");
        }
        return new Calibration(found, null);
    }

    private static bool BindMkl()
    {
        if (s_mklSqrt != null) return true;
        // A bare name: the dynamic loader returns the libtorch_cpu that TorchSharp already loaded, never a second copy.
        string library = OperatingSystem.IsWindows() ? "torch_cpu.dll" : OperatingSystem.IsMacOS() ? "libtorch_cpu.dylib" : "libtorch_cpu.so";
        if (!NativeLibrary.TryLoad(library, out IntPtr handle) || !NativeLibrary.TryGetExport(handle, "VMSSQRT_64_", out IntPtr entry)) return false;
        s_mklSqrt = (delegate* unmanaged<long*, float*, float*, long*, void>)entry;
        return true;
    }

    private static bool BitIdentical(torch.Tensor expected, torch.Tensor actual) =>
        MemoryMarshal.Cast<byte, int>(expected.bytes).SequenceEqual(MemoryMarshal.Cast<byte, int>(actual.bytes));
}
