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

    /// <summary>
    /// Elements per chunk that the MKL square root skips when the whole chunk is zero, and that the pass leaves alone
    /// when its gradient and moments are all zero and the step would not change them (<see cref="LeavesInertElementsAlone"/>).
    /// </summary>
    private const int ZeroChunkElements = 64;

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
    public static bool TryApply(in AdamWUpdate update, torch.Tensor data, torch.Tensor grad, torch.Tensor expAvg, torch.Tensor expAvgSq) =>
        TryApply(update, data, grad, expAvg, expAvgSq, Fold.None);

    /// <summary>
    /// As <see cref="TryApply(in AdamWUpdate, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor)"/>, with the
    /// stepper's work around the step done in the same pass (<paramref name="fold"/>): each gradient element scaled by
    /// the clip coefficient as it is read, the EMA of the new parameter where the fold names an EMA slot, and the
    /// gradient zeroed after it was read. The EMA tensors must be contiguous float32 CPU tensors that do not overlap
    /// the bucket's buffers (<see cref="EmaSegment"/>).
    /// </summary>
    public static bool TryApply(in AdamWUpdate update, torch.Tensor data, torch.Tensor grad, torch.Tensor expAvg, torch.Tensor expAvgSq, Fold fold)
    {
        ArgumentNullException.ThrowIfNull(fold);
        if (!Fits(data, grad, expAvg, expAvgSq) || !IsAvailable) return false;
        Run(Coefficients.Of(update), s_calibration.Value.Root, data, grad, expAvg, expAvgSq, fold);
        return true;
    }

    /// <summary>
    /// An EMA slot for a run of bucket elements: elements [<paramref name="Offset"/>, <paramref name="Offset"/> +
    /// <paramref name="Length"/>) of the bucket average into <paramref name="Ema"/> (contiguous float32 on the CPU, of
    /// <paramref name="Length"/> elements) as <c>ema.mul_(decay).add_(param, alpha: 1 − decay)</c> after the step.
    /// </summary>
    internal readonly record struct EmaSegment(long Offset, long Length, torch.Tensor Ema);

    /// <summary>
    /// What the pass does besides the AdamW step. <see cref="GradScale"/>: multiply each gradient element by it first
    /// (<c>grad.mul_(coefficient)</c>: one float32 product, so a coefficient of 1 changes nothing); <see cref="Ema"/>:
    /// sorted, non-overlapping EMA segments with the decay (libtorch rounds the decay and 1 − decay to float32);
    /// <see cref="ZeroGradient"/>: leave zeros in the gradient buffer (else the scaled gradient, as <c>mul_</c> leaves it).
    /// </summary>
    internal sealed record Fold(float? GradScale, IReadOnlyList<EmaSegment> Ema, double EmaDecay, bool ZeroGradient)
    {
        /// <summary>The plain AdamW step.</summary>
        public static Fold None { get; } = new(null, [], 0, false);
    }

    /// <summary>The update's scalars as libtorch converts them to float32 (round to nearest), in the operations' terms.</summary>
    private readonly record struct Coefficients(float Decay, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
        float DenominatorScale, float Eps, float NegativeStepSize)
    {
        public static Coefficients Of(in AdamWUpdate u) => new((float)u.Decay, (float)u.Beta1, (float)(1 - u.Beta1), (float)u.Beta2,
            (float)(1 - u.Beta2), (float)u.DenominatorScale, (float)u.Eps, (float)-u.StepSize);
    }

    /// <summary>The fold's EMA segments as raw pointers, checked, with the decay's float32 roundings.</summary>
    private sealed class NativeFold
    {
        public NativeFold(Fold fold, long elements)
        {
            Scale = fold.GradScale ?? 1f;
            Scaled = fold.GradScale is not null;
            Zero = fold.ZeroGradient;
            Decay = (float)fold.EmaDecay;
            Alpha = (float)(1.0 - fold.EmaDecay);
            Starts = new long[fold.Ema.Count];
            Ends = new long[fold.Ema.Count];
            Pointers = new nint[fold.Ema.Count];
            long previousEnd = 0;
            for (int i = 0; i < fold.Ema.Count; i++)
            {
                EmaSegment segment = fold.Ema[i];
                torch.Tensor ema = segment.Ema;
                if (segment.Offset < previousEnd || segment.Length <= 0 || segment.Offset + segment.Length > elements)
                    throw new ArgumentException($"EMA segment {i} ({segment.Offset}, {segment.Length}) is out of order, empty or outside the bucket of {elements} elements.", nameof(fold));
                if (ema.device_type != DeviceType.CPU || ema.dtype != torch.float32 || !ema.is_contiguous() || ema.numel() != segment.Length)
                    throw new ArgumentException($"EMA segment {i} is not a contiguous float32 CPU tensor of {segment.Length} elements.", nameof(fold));
                Starts[i] = segment.Offset;
                Ends[i] = segment.Offset + segment.Length;
                Pointers[i] = Pointer(ema);
                previousEnd = Ends[i];
            }
        }

        public float Scale { get; }
        public bool Scaled { get; }
        public bool Zero { get; }
        public float Decay { get; }
        public float Alpha { get; }
        public long[] Starts { get; }
        public long[] Ends { get; }
        public nint[] Pointers { get; }
    }

    private static void Run(Coefficients c, SquareRoot root, torch.Tensor data, torch.Tensor grad, torch.Tensor expAvg, torch.Tensor expAvgSq, Fold fold)
    {
        long n = data.numel();
        if (n == 0) return;
        var native = new NativeFold(fold, n);
        nint p = Pointer(data), g = Pointer(grad), m = Pointer(expAvg), v = Pointer(expAvgSq);
        long tiles = (n + TileElements - 1) / TileElements;
        int threads = Math.Clamp(torch.get_num_threads(), 1, Environment.ProcessorCount);
        bool skipInert = LeavesInertElementsAlone(c, native);
        if (threads == 1 || tiles == 1)
        {
            Range(c, root, native, skipInert, p, g, m, v, 0, n);
        }
        else
        {
            Parallel.For(0, tiles, new ParallelOptions { MaxDegreeOfParallelism = threads },
                t => Range(c, root, native, skipInert, p, g, m, v, t * TileElements, Math.Min(n, (t + 1) * TileElements)));
        }
        GC.KeepAlive(data);
        GC.KeepAlive(grad);
        GC.KeepAlive(expAvg);
        GC.KeepAlive(expAvgSq);
        GC.KeepAlive(fold);
    }

    private static nint Pointer(torch.Tensor tensor)
    {
        IntPtr pointer = TensorData(tensor.Handle);
        if (pointer == IntPtr.Zero) torch.CheckForErrors();
        return pointer == IntPtr.Zero ? throw new InvalidOperationException("libtorch returned no data pointer for a flat AdamW buffer.") : pointer;
    }

    /// <summary>
    /// Whether an element whose gradient and both moments are +0 (all bits clear) comes out of this step unchanged, bit
    /// for bit, in every buffer: then the pass leaves whole chunks of such elements alone (it still averages their
    /// parameters into the EMA). With no weight decay (the parameter is multiplied by exactly 1), a positive ε and a
    /// negative step, libtorch's operations give <c>exp_avg = fma(+0, 1 − β1, +0·β1) = +0</c>, <c>exp_avg_sq = +0</c>,
    /// <c>denom = sqrt(+0) / scale + ε = ε</c> and <c>param = param·1 + (−step·(+0)) / ε = param + (−0) = param</c>
    /// (also for ±0), and a clip scale above zero leaves a +0 gradient +0. These are the rows of an embedding whose
    /// tokens no batch has held yet (the reference trains with weight decay 0): at the hidden-896 config's ~1,024-token
    /// packs, most of the 136 M-element embedding.
    /// </summary>
    private static bool LeavesInertElementsAlone(in Coefficients c, NativeFold fold) =>
        c.Decay == 1f && c.Eps > 0f && c.NegativeStepSize < 0f && c.Beta1 >= 0f && c.Beta2 >= 0f && c.OneMinusBeta2 >= 0f
        && c.DenominatorScale > 0f && (!fold.Scaled || fold.Scale > 0f);

    private static void Range(Coefficients c, SquareRoot root, NativeFold fold, bool skipInert, nint p, nint g, nint m, nint v, long from, long to)
    {
        float* roots = stackalloc float[BlockElements];
        // The first EMA segment that ends after this range starts; segments are sorted.
        int segment = Array.BinarySearch(fold.Ends, from);
        segment = segment >= 0 ? segment + 1 : ~segment;
        for (long start = from; start < to; start += BlockElements)
        {
            int n = (int)Math.Min(BlockElements, to - start);
            float* pb = (float*)p + start, gb = (float*)g + start, mb = (float*)m + start, vb = (float*)v + start;
            if (!skipInert)
            {
                Step(c, root, fold, pb, gb, mb, vb, roots, n);
            }
            else
            {
                // Runs of chunks that are not inert (a partial last chunk never is) step; inert chunks stay as they are.
                int live = -1;
                for (int at = 0; at < n; at += ZeroChunkElements)
                {
                    bool inert = at + ZeroChunkElements <= n && Inert(gb + at, mb + at, vb + at);
                    if (!inert && live < 0) live = at;
                    else if (inert && live >= 0)
                    {
                        Step(c, root, fold, pb + live, gb + live, mb + live, vb + live, roots, at - live);
                        live = -1;
                    }
                }
                if (live >= 0) Step(c, root, fold, pb + live, gb + live, mb + live, vb + live, roots, n - live);
            }
            // The EMA of the block's new parameters (still in cache) where a segment covers them.
            long end = start + n;
            while (segment < fold.Starts.Length && fold.Starts[segment] < end)
            {
                long a = Math.Max(start, fold.Starts[segment]), b = Math.Min(end, fold.Ends[segment]);
                if (b > a) Ema((float*)p + a, (float*)fold.Pointers[segment] + (a - fold.Starts[segment]), fold.Decay, fold.Alpha, (int)(b - a));
                if (fold.Ends[segment] > end) break; // the segment goes on into the next block
                segment++;
            }
        }
    }

    /// <summary>The clip scale, the AdamW step and the gradient's zeroing on a run of elements.</summary>
    private static void Step(in Coefficients c, SquareRoot root, NativeFold fold, float* p, float* g, float* m, float* v, float* roots, int n)
    {
        if (fold.Scaled) Scale(g, fold.Scale, n);
        Block(c, root, p, g, m, v, roots, n);
        if (fold.Zero) new Span<float>(g, n).Clear();
    }

    /// <summary>Whether the gradient and both moments of a chunk of <see cref="ZeroChunkElements"/> are all +0 (no bit set).</summary>
    private static bool Inert(float* g, float* m, float* v)
    {
        uint* gb = (uint*)g, mb = (uint*)m, vb = (uint*)v;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<uint> any = Vector256<uint>.Zero;
            for (int k = 0; k < ZeroChunkElements; k += Vector256<uint>.Count)
                any |= Vector256.Load(gb + k) | Vector256.Load(mb + k) | Vector256.Load(vb + k);
            return any == Vector256<uint>.Zero;
        }
        uint scalar = 0;
        for (int k = 0; k < ZeroChunkElements; k++) scalar |= gb[k] | mb[k] | vb[k];
        return scalar == 0;
    }

    /// <summary><c>grad.mul_(scale)</c> on a block: one float32 product per element.</summary>
    private static void Scale(float* g, float scale, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> s = Vector256.Create(scale);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count) (Vector256.Load(g + i) * s).Store(g + i);
        }
        for (; i < n; i++) g[i] *= scale;
    }

    /// <summary>
    /// <c>ema.mul_(decay).add_(param, alpha)</c> on a block: the product rounded, then libtorch's <c>add_</c> with alpha,
    /// a fused multiply-add (<c>fma(param, alpha, ema·decay)</c>) in its CPU kernels.
    /// </summary>
    private static void Ema(float* p, float* e, float decay, float alpha, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> d = Vector256.Create(decay), a = Vector256.Create(alpha);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                Vector256.FusedMultiplyAdd(Vector256.Load(p + i), a, Vector256.Load(e + i) * d).Store(e + i);
        }
        for (; i < n; i++) e[i] = MathF.FusedMultiplyAdd(p[i], alpha, e[i] * decay);
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
            MklSquareRoots(values, roots, n);
            return;
        }
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count) Vector256.Sqrt(Vector256.Load(values + i)).Store(roots + i);
        }
        for (; i < n; i++) roots[i] = MathF.Sqrt(values[i]);
    }

    /// <summary>
    /// MKL's square roots of a block, except where whole chunks of <see cref="ZeroChunkElements"/> are zero: those are
    /// copied (the root of ±0 is ±0, in MKL as in IEEE; the calibration checks zeros). MKL's vector square root takes a
    /// slow path for zero inputs: where the second moments are zero (the embedding rows of tokens no batch has held yet,
    /// most of a vocabulary early in a run) a block took about four times as long as the rest of the pass. Skipping
    /// only whole chunks keeps the number of MKL calls per block small whatever the pattern of zeros (at most
    /// one per chunk), and every root still comes from MKL, whose results do not depend on where a call starts.
    /// </summary>
    private static void MklSquareRoots(float* values, float* roots, int n)
    {
        long mode = VmlMode, count;
        int pending = 0; // the first element not yet taken
        int i = 0;
        while (i + ZeroChunkElements <= n)
        {
            if (!AllZero(values + i))
            {
                i += ZeroChunkElements;
                continue;
            }
            if (i > pending)
            {
                count = i - pending;
                s_mklSqrt(&count, values + pending, roots + pending, &mode);
            }
            int end = i + ZeroChunkElements;
            while (end + ZeroChunkElements <= n && AllZero(values + end)) end += ZeroChunkElements;
            new ReadOnlySpan<float>(values + i, end - i).CopyTo(new Span<float>(roots + i, end - i));
            pending = i = end;
        }
        if (n > pending)
        {
            count = n - pending;
            s_mklSqrt(&count, values + pending, roots + pending, &mode);
        }
    }

    /// <summary>Whether all <see cref="ZeroChunkElements"/> values are ±0 (no magnitude bit set).</summary>
    private static bool AllZero(float* values)
    {
        uint* bits = (uint*)values;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<uint> any = Vector256<uint>.Zero;
            for (int k = 0; k < ZeroChunkElements; k += Vector256<uint>.Count) any |= Vector256.Load(bits + k);
            return (any & Vector256.Create(0x7FFF_FFFFu)) == Vector256<uint>.Zero;
        }
        uint scalar = 0;
        for (int k = 0; k < ZeroChunkElements; k++) scalar |= bits[k];
        return (scalar & 0x7FFF_FFFFu) == 0;
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
        // Second moments as they occur (tiny), and a spread over many orders of magnitude, with zeros: single ones and
        // runs long enough for the square root to skip whole chunks of them.
        torch.Tensor values = torch.cat([
            torch.rand(CalibrationElements, generator: generator).mul_(1e-6),
            torch.zeros(203),
            torch.randn(CalibrationElements, generator: generator).mul_(10).exp_(),
            torch.zeros(3),
            torch.rand(100, generator: generator),
            torch.zeros(1_000)]);
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
            ZeroRows(g, m, v);
            torch.Tensor p2 = p.clone(), m2 = m.clone(), v2 = v.clone();
            update.Apply(p, g, m, v, torch.empty_like(v));
            Run(Coefficients.Of(update), found, p2, g, m2, v2, Fold.None);
            if (!BitIdentical(m, m2) || !BitIdentical(v, v2) || !BitIdentical(p, p2))
                return new Calibration(found, $"the fused AdamW pass differed from libtorch's operations in a self-check (lr {s.Lr}, betas {s.Beta1}/{s.Beta2}, eps {s.Eps}, weight decay {s.WeightDecay}, step {s.Step})");
        }

        // The folded stepper work against the separate libtorch operations: clip scale (below 1, and 1 as when the norm
        // is under the bound), the EMA over two segments with a gap between them (the gap's EMA must stay as it was),
        // and the gradient zeroed or left scaled.
        // Without weight decay the pass leaves chunks of zero gradients and moments alone (ZeroRows makes some).
        (float Scale, double Decay, bool Zero, double WeightDecay)[] folds = [(0.37f, 0.9999, true, 0), (1f, 0.9, false, 0.02), (0.8125f, 0.5, false, 0)];
        foreach (var f in folds)
        {
            var options = new AdamW.Options { LearningRate = 3e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = f.WeightDecay };
            var update = AdamWUpdate.For(options, 3);
            torch.Tensor p = torch.randn(CalibrationElements, generator: generator);
            torch.Tensor g = torch.randn(CalibrationElements, generator: generator).mul_(1e-2);
            torch.Tensor m = torch.randn(CalibrationElements, generator: generator).mul_(1e-3);
            torch.Tensor v = torch.rand(CalibrationElements, generator: generator).mul_(1e-6);
            torch.Tensor ema = torch.randn(CalibrationElements, generator: generator);
            ZeroRows(g, m, v);
            torch.Tensor p2 = p.clone(), g2 = g.clone(), m2 = m.clone(), v2 = v.clone(), ema2 = ema.clone();
            const long firstEnd = 5_003, secondStart = 7_001;
            g.mul_(torch.tensor(f.Scale));
            update.Apply(p, g, m, v, torch.empty_like(v));
            foreach ((long from, long to) in new[] { (0L, firstEnd), (secondStart, (long)CalibrationElements) })
                ema.narrow(0, from, to - from).mul_(f.Decay).add_(p.narrow(0, from, to - from), alpha: 1.0 - f.Decay);
            if (f.Zero) g.zero_();
            var fold = new Fold(f.Scale, [new EmaSegment(0, firstEnd, ema2.narrow(0, 0, firstEnd)),
                new EmaSegment(secondStart, CalibrationElements - secondStart, ema2.narrow(0, secondStart, CalibrationElements - secondStart))], f.Decay, f.Zero);
            Run(Coefficients.Of(update), found, p2, g2, m2, v2, fold);
            if (!BitIdentical(m, m2) || !BitIdentical(v, v2) || !BitIdentical(p, p2) || !BitIdentical(ema, ema2) || !BitIdentical(g, g2))
                return new Calibration(found, $"the fused AdamW pass with the clip scale, EMA and zeroing folded in differed from libtorch's operations in a self-check (scale {f.Scale}, EMA decay {f.Decay}, zero {f.Zero}, weight decay {f.WeightDecay})");
        }
        return new Calibration(found, null);
    }

    /// <summary>
    /// Zero gradients and moments over a few row-like runs, as the embedding rows of tokens not seen yet have them, and
    /// zero gradients alone over another (a row seen before but not in this batch: its moments still decay).
    /// </summary>
    private static void ZeroRows(torch.Tensor g, torch.Tensor m, torch.Tensor v)
    {
        foreach ((long from, long length) in new[] { (1_000L, 896L), (4_090L, 3_000L), (9_001L, 70L), (15_000L, 5L) })
        {
            foreach (torch.Tensor t in (ReadOnlySpan<torch.Tensor>)[g, m, v]) t.narrow(0, from, length).zero_();
        }
        g.narrow(0, 12_000, 500).zero_();
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
