using System.Runtime.InteropServices;
using Bagel.Core.Native;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Bagel.Training.Schedules;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Tests.Training.Optimization;

/// <summary>
/// The fused float32 AdamW pass (issue 11 item 4): randomized against TorchSharp's per-tensor AdamW bit for bit (odd
/// sizes, tails, tensors spanning the parallel tiles, weight decay, several steps and settings, clipped gradients),
/// and its fallbacks. Uses its own generators only.
/// </summary>
public sealed class FusedAdamWKernelTests
{
    public FusedAdamWKernelTests() => TorchRuntime.EnsureLoaded();

    /// <summary>Odd sizes: shorter than a vector, vector tails, a block tail, and tensors that span several parallel tiles.</summary>
    private static readonly long[][] Shapes = [[1], [7], [3, 5], [17, 33], [1000], [2049], [70_001], [3, 45_679]];

    private static Parameter[] NewParameters(ulong seed)
    {
        var generator = new torch.Generator(seed);
        return [.. Shapes.Select(shape => new Parameter(torch.randn(shape, generator: generator)))];
    }

    private static bool SameBits(torch.Tensor expected, torch.Tensor actual) =>
        expected.dtype == actual.dtype && expected.shape.SequenceEqual(actual.shape) &&
        MemoryMarshal.Cast<byte, int>(expected.contiguous().bytes).SequenceEqual(MemoryMarshal.Cast<byte, int>(actual.contiguous().bytes));

    /// <summary>Gives both parameter sets the same random gradients, in place (the flat set's gradients are views of its buffer).</summary>
    private static void SetGradients(Parameter[] reference, Parameter[] flat, ulong seed, double scale)
    {
        var generator = new torch.Generator(seed);
        using var noGrad = torch.no_grad();
        for (int i = 0; i < reference.Length; i++)
        {
            using torch.Tensor random = torch.randn(reference[i].shape, generator: generator).mul_(scale);
            foreach (Parameter p in new[] { reference[i], flat[i] })
            {
                using torch.Tensor? grad = p.grad;
                if (grad is null) p.grad = random.clone();
                else grad.copy_(random);
            }
        }
    }

    private static void AssertBitIdentical(Parameter[] expected, AdamW expectedOptimizer, Parameter[] actual, AdamW actualOptimizer, string what)
    {
        for (int i = 0; i < expected.Length; i++) Assert.True(SameBits(expected[i], actual[i]), $"{what}: parameter {i} ({string.Join('x', Shapes[i])}) differs");
        var expectedStates = expectedOptimizer.state_dict().State.Cast<AdamW.State>().ToList();
        var actualStates = actualOptimizer.state_dict().State.Cast<AdamW.State>().ToList();
        Assert.Equal(expectedStates.Select(s => s.step), actualStates.Select(s => s.step));
        for (int i = 0; i < expectedStates.Count; i++)
        {
            Assert.True(SameBits(expectedStates[i].exp_avg, actualStates[i].exp_avg), $"{what}: exp_avg {i} differs");
            Assert.True(SameBits(expectedStates[i].exp_avg_sq, actualStates[i].exp_avg_sq), $"{what}: exp_avg_sq {i} differs");
        }
    }

    [Fact]
    public void TheKernelPassesItsCalibrationOnThisMachine() => Assert.True(FusedAdamWKernel.IsAvailable, FusedAdamWKernel.UnavailableReason);

    [Theory]
    [InlineData(1e-4, 0.9, 0.95, 1e-15, 0.0, 1.0)] // the reference's settings, no clipping
    [InlineData(3e-2, 0.8, 0.999, 1e-8, 0.1, 0.05)] // weight decay, clipped every step
    [InlineData(2e-3, 0.95, 0.98, 1e-6, 0.01, 0.5)]
    [InlineData(1e-1, 0.5, 0.9, 1e-3, 0.3, 0.2)]
    public void RandomizedStepsAreBitIdenticalToTorchSharpsPerTensorAdamW(double lr, double beta1, double beta2, double eps, double weightDecay, double maxNorm)
    {
        ulong seed = (ulong)(lr * 1e6 + beta2 * 1e3);
        Parameter[] reference = NewParameters(seed), flat = NewParameters(seed);
        var options = new AdamWOptions { LearningRate = lr, Beta1 = beta1, Beta2 = beta2, Eps = eps, WeightDecay = weightDecay };
        using AdamW referenceOptimizer = AdamWFactory.Create([new ParameterGroup("all", reference)], new AdamWOptions
        {
            LearningRate = lr, Beta1 = beta1, Beta2 = beta2, Eps = eps, WeightDecay = weightDecay, FlatBuffers = false,
        });
        using var flatOptimizer = (FlatBufferAdamW)AdamWFactory.Create([new ParameterGroup("all", flat)], options);
        flatOptimizer.AttachGradients();
        const int steps = 5;
        for (int step = 0; step < steps; step++)
        {
            // Gradients that vary in size from step to step, so some steps clip and the moments see several scales.
            SetGradients(reference, flat, seed + (ulong)step, scale: step % 2 == 0 ? 1e-3 : 0.3);
            double expectedNorm = GradientClipping.ClipGradNorm(reference, maxNorm), actualNorm = GradientClipping.ClipGradNorm(flatOptimizer, maxNorm);
            Assert.Equal(expectedNorm, actualNorm);
            referenceOptimizer.step();
            flatOptimizer.step();
            AssertBitIdentical(reference, referenceOptimizer, flat, flatOptimizer, $"step {step + 1}");
        }
        Assert.Equal(steps, flatOptimizer.FlatSteps);
        Assert.Equal(steps, flatOptimizer.FusedKernelBucketSteps); // one float32 bucket, stepped by the kernel every time
        foreach (Parameter p in reference.Concat(flat)) p.Dispose();
    }

    /// <summary>
    /// An embedding whose rows get gradients only when their token is in the batch: most second moments stay exactly
    /// zero, so the pass skips whole zero chunks of the MKL square root (rows of 96 and 1,000 elements, runs that start
    /// and end inside the kernel's chunks and blocks). Still bit for bit TorchSharp's per-tensor AdamW.
    /// </summary>
    [Fact]
    public void EmbeddingRowsWithoutGradientsStayBitIdenticalToTorchSharpsPerTensorAdamW()
    {
        long[][] shapes = [[300, 96], [40, 1_000]];
        var generator = new torch.Generator(77);
        torch.Tensor[] initial = [.. shapes.Select(shape => torch.randn(shape, generator: generator))];
        Parameter[] reference = [.. initial.Select(t => new Parameter(t.clone()))], flat = [.. initial.Select(t => new Parameter(t.clone()))];
        var options = new AdamWOptions { LearningRate = 1e-3, Beta1 = 0.9, Beta2 = 0.95, Eps = 1e-15, WeightDecay = 0.0 };
        using AdamW referenceOptimizer = AdamWFactory.Create([new ParameterGroup("all", reference)], new AdamWOptions
        {
            LearningRate = 1e-3, Beta1 = 0.9, Beta2 = 0.95, Eps = 1e-15, WeightDecay = 0.0, FlatBuffers = false,
        });
        using var flatOptimizer = (FlatBufferAdamW)AdamWFactory.Create([new ParameterGroup("all", flat)], options);
        flatOptimizer.AttachGradients();
        for (int step = 0; step < 4; step++)
        {
            using var noGrad = torch.no_grad();
            for (int i = 0; i < shapes.Length; i++)
            {
                long rows = shapes[i][0];
                using torch.Tensor grad = torch.zeros(shapes[i]);
                // A few rows per step ("tokens in the batch"), different ones each step; everything else exactly zero.
                foreach (long row in new long[] { 3 + step, rows / 2, rows / 2 + 1 + step, rows - 1 - step })
                {
                    using torch.Tensor values = torch.randn(shapes[i][1], generator: generator).mul_(1e-2);
                    grad[row].copy_(values);
                }
                foreach (Parameter p in new[] { reference[i], flat[i] })
                {
                    using torch.Tensor? existing = p.grad;
                    if (existing is null) p.grad = grad.clone();
                    else existing.copy_(grad);
                }
            }
            referenceOptimizer.step();
            flatOptimizer.step();
            for (int i = 0; i < shapes.Length; i++) Assert.True(SameBits(reference[i], flat[i]), $"step {step + 1}: parameter {i} differs");
            var expectedStates = referenceOptimizer.state_dict().State.Cast<AdamW.State>().ToList();
            var actualStates = flatOptimizer.state_dict().State.Cast<AdamW.State>().ToList();
            for (int i = 0; i < expectedStates.Count; i++)
            {
                Assert.True(SameBits(expectedStates[i].exp_avg, actualStates[i].exp_avg), $"step {step + 1}: exp_avg {i} differs");
                Assert.True(SameBits(expectedStates[i].exp_avg_sq, actualStates[i].exp_avg_sq), $"step {step + 1}: exp_avg_sq {i} differs");
            }
        }
        Assert.Equal(4, flatOptimizer.FusedKernelBucketSteps);
        foreach (torch.Tensor t in initial) t.Dispose();
        foreach (Parameter p in reference.Concat(flat)) p.Dispose();
    }

    [Fact]
    public void WithTheKernelOffTheBucketsRunLibtorchsOperationsWithTheSameBits()
    {
        Parameter[] fused = NewParameters(3), operations = NewParameters(3);
        var options = new AdamWOptions { LearningRate = 1e-2, Eps = 1e-8, WeightDecay = 0.05 };
        using var fusedOptimizer = (FlatBufferAdamW)AdamWFactory.Create([new ParameterGroup("all", fused)], options);
        options.FusedKernel = false;
        using var operationsOptimizer = (FlatBufferAdamW)AdamWFactory.Create([new ParameterGroup("all", operations)], options);
        Assert.False(operationsOptimizer.FusedKernel);
        for (int step = 0; step < 3; step++)
        {
            SetGradients(fused, operations, (ulong)(30 + step), scale: 1e-2);
            fusedOptimizer.step();
            operationsOptimizer.step();
        }
        AssertBitIdentical(operations, operationsOptimizer, fused, fusedOptimizer, "kernel on vs off");
        Assert.Equal(3, fusedOptimizer.FusedKernelBucketSteps);
        Assert.Equal(0, operationsOptimizer.FusedKernelBucketSteps);
        Assert.Equal(3, operationsOptimizer.FlatSteps);
        foreach (Parameter p in fused.Concat(operations)) p.Dispose();
    }

    [Fact]
    public void OnlyFloat32BucketsUseTheKernel()
    {
        var generator = new torch.Generator(8);
        Parameter single = new(torch.randn([5, 3], generator: generator)), twin = new(torch.randn([4], generator: generator).to(torch.float64));
        using var optimizer = (FlatBufferAdamW)AdamWFactory.Create([new ParameterGroup("all", [single, twin])], new AdamWOptions { LearningRate = 1e-2 });
        optimizer.AttachGradients();
        using (var noGrad = torch.no_grad())
        {
            foreach (Parameter p in new[] { single, twin })
            {
                using torch.Tensor? grad = p.grad;
                grad!.fill_(0.25);
            }
        }
        optimizer.step();
        optimizer.step();
        Assert.Equal(2, optimizer.Buckets.Count);
        Assert.Equal(2, optimizer.FusedKernelBucketSteps); // the float32 bucket each step, never the float64 one
        Assert.Equal(2, optimizer.FlatSteps);
        single.Dispose();
        twin.Dispose();
    }

    [Fact]
    public void BuffersThatAreNotContiguousFloat32AreLeftToLibtorch()
    {
        using var scope = torch.NewDisposeScope();
        torch.Tensor contiguous = torch.zeros(8), strided = torch.zeros(16).slice(0, 0, 16, 2), doubles = torch.zeros(8, torch.float64);
        Assert.True(FusedAdamWKernel.Fits(contiguous, contiguous, contiguous, contiguous));
        Assert.False(FusedAdamWKernel.Fits(strided, contiguous, contiguous, contiguous));
        Assert.False(FusedAdamWKernel.Fits(contiguous, doubles, contiguous, contiguous));
        Assert.False(FusedAdamWKernel.Fits(contiguous, contiguous, torch.zeros(9), contiguous));
        var update = new AdamWUpdate(1, 0.9, 0.95, 1e-8, 1, 1e-3);
        Assert.False(FusedAdamWKernel.TryApply(update, strided, contiguous, contiguous, contiguous));
        Assert.True(strided.eq(0).all().item<bool>(), "a buffer the kernel does not fit was written");
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void AStepInvalidatesAGraphThatSavedAParameterOnEveryPath(bool flatBuffers, bool fusedKernel)
    {
        var generator = new torch.Generator(12);
        Parameter a = new(torch.randn([6], generator: generator)), b = new(torch.randn([5], generator: generator));
        using AdamW optimizer = AdamWFactory.Create([new ParameterGroup("all", [a, b])],
            new AdamWOptions { LearningRate = 1e-2, FlatBuffers = flatBuffers, FusedKernel = fusedKernel });
        using (var noGrad = torch.no_grad())
        {
            foreach (Parameter p in new[] { a, b }) p.grad = torch.full(p.shape, 0.5f);
        }
        using torch.Tensor loss = a.mul(a).sum().add(b.mul(b).sum()); // saves a and b for the backward
        optimizer.step();
        if (optimizer is FlatBufferAdamW flat) Assert.Equal(fusedKernel ? 1 : 0, flat.FusedKernelBucketSteps);
        // As after TorchSharp's per-tensor step: "one of the variables needed for gradient computation has been modified by an inplace operation".
        Assert.ThrowsAny<Exception>(() => loss.backward());
        a.Dispose();
        b.Dispose();
    }

    /// <summary>
    /// One run of the stepper over parameters of the sizes of <see cref="Shapes"/> (float32), plus a float64 one and a
    /// frozen one, with an EMA over all of them (in their order or the reverse): every step's gradients,
    /// losses and NaN steps come from the seed, so two runs differ only in how the optimizer step is computed.
    /// </summary>
    private sealed class StepperRun : IDisposable
    {
        private readonly bool _sparseRows;

        public StepperRun(ulong seed, bool flat, bool fold, double maxNorm, bool reverseEmaOrder, double weightDecay = 0.05, bool sparseRows = false)
        {
            _sparseRows = sparseRows;
            var generator = new torch.Generator(seed);
            Parameters = [.. Shapes.Select(shape => new Parameter(torch.randn(shape, generator: generator))),
                new Parameter(torch.randn([9, 3], generator: generator).to(torch.float64)), new Parameter(torch.randn([4], generator: generator), requires_grad: false)];
            Optimizer = AdamWFactory.Create([new ParameterGroup("all", [.. Parameters.Where(p => p.requires_grad)])],
                new AdamWOptions { LearningRate = 2e-2, Beta1 = 0.9, Beta2 = 0.95, Eps = 1e-8, WeightDecay = weightDecay, FlatBuffers = flat });
            if (Optimizer is FlatBufferAdamW f)
            {
                f.FoldStepperWork = fold;
                f.AttachGradients();
            }
            (string, Parameter)[] named = [.. Parameters.Select((p, i) => ($"p{i}", p))];
            if (reverseEmaOrder) Array.Reverse(named); // the EMA's flat buffer then lies in the opposite order to the optimizer's
            Ema = new EmaTensors(named, decay: 0.9, fused: flat);
            Scheduler = new LearningRateScheduler(Optimizer, new CosineWithWarmupSchedule(1, 20, 2e-2, 1e-3));
            Stepper = new OptimizerStepper(Optimizer, Scheduler, Ema, new NonFiniteStepGuard(), maxNorm);
        }

        public Parameter[] Parameters { get; }
        public AdamW Optimizer { get; }
        public EmaTensors Ema { get; }
        public LearningRateScheduler Scheduler { get; }
        public OptimizerStepper Stepper { get; }

        public OptimizerStepResult Step(int step, ulong seed, bool nan)
        {
            var generator = new torch.Generator(seed + (ulong)step * 7919);
            using (var noGrad = torch.no_grad())
            {
                foreach (Parameter p in Parameters.Where(p => p.requires_grad))
                {
                    using torch.Tensor random = torch.randn(p.shape, generator: generator).mul_(step % 2 == 0 ? 1e-3 : 0.5).to(p.dtype);
                    if (_sparseRows && p.dim() == 2 && p.shape[0] >= 3)
                    {
                        // Only two rows get a gradient ("tokens in the batch"); the others stay +0, as do their moments until first seen.
                        using torch.Tensor rows = random.clone();
                        random.zero_();
                        foreach (long row in new[] { step % p.shape[0], p.shape[0] / 2 }) random[row].copy_(rows[row]);
                    }
                    using torch.Tensor? grad = p.grad;
                    if (grad is null) p.grad = random.clone();
                    else grad.copy_(random);
                }
            }
            return Stepper.Step(step, nan ? double.NaN : 1.0);
        }

        public void Dispose()
        {
            Ema.Dispose();
            Optimizer.Dispose();
            foreach (Parameter p in Parameters) p.Dispose();
        }
    }

    private static void AssertSameRun(StepperRun expected, StepperRun actual, string what)
    {
        for (int i = 0; i < expected.Parameters.Length; i++)
        {
            Assert.True(SameBits(expected.Parameters[i], actual.Parameters[i]), $"{what}: parameter {i} differs");
            Assert.True(SameBits(expected.Ema[$"p{i}"], actual.Ema[$"p{i}"]), $"{what}: EMA {i} differs");
            using torch.Tensor? grad = actual.Parameters[i].grad;
            if (grad is not null) Assert.True(grad.eq(0).all().item<bool>(), $"{what}: gradient {i} was not zeroed");
        }
        var expectedStates = expected.Optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        var actualStates = actual.Optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        Assert.Equal(expectedStates.Select(s => s.step), actualStates.Select(s => s.step));
        for (int i = 0; i < expectedStates.Count; i++)
        {
            Assert.True(SameBits(expectedStates[i].exp_avg, actualStates[i].exp_avg), $"{what}: exp_avg {i} differs");
            Assert.True(SameBits(expectedStates[i].exp_avg_sq, actualStates[i].exp_avg_sq), $"{what}: exp_avg_sq {i} differs");
        }
        Assert.Equal(expected.Scheduler.NextStep, actual.Scheduler.NextStep);
    }

    [Theory]
    [InlineData(1e9, false)] // the norm is always under the bound: coefficient 1
    [InlineData(0.05, false)] // clipped every step
    [InlineData(2.0, false)] // clipped on the large-gradient steps only
    [InlineData(0.3, true)] // the EMA laid out in the opposite order: one EMA slot per tensor, still folded
    public void TheFoldedStepperIsBitIdenticalToTheSeparatePassesAndToThePerTensorPath(double maxNorm, bool reverseEmaOrder)
    {
        const ulong seed = 404;
        using var perTensor = new StepperRun(seed, flat: false, fold: false, maxNorm, reverseEmaOrder);
        using var separate = new StepperRun(seed, flat: true, fold: false, maxNorm, reverseEmaOrder);
        using var folded = new StepperRun(seed, flat: true, fold: true, maxNorm, reverseEmaOrder);
        const int steps = 6;
        int clipped = 0;
        for (int step = 0; step < steps; step++)
        {
            bool nan = step == 3; // a skipped step: nothing changes, the gradients are zeroed
            OptimizerStepResult a = perTensor.Step(step, seed, nan), b = separate.Step(step, seed, nan), c = folded.Step(step, seed, nan);
            if (!nan) Assert.Equal(a.GradNorm, c.GradNorm);
            Assert.Equal(b.GradNorm, c.GradNorm);
            Assert.Equal(b.Skipped, c.Skipped);
            Assert.Equal(nan, c.Skipped);
            if (!nan && c.GradNorm > maxNorm) clipped++;
            // One float32 bucket folded (the float64 one takes libtorch's operations); every float32 EMA tensor folded.
            Assert.Equal(nan ? 0 : 1, c.FoldedBuckets);
            Assert.Equal(nan ? 0 : Shapes.Length, c.FoldedEmaTensors);
            Assert.Equal(0, b.FoldedBuckets);
            AssertSameRun(separate, folded, $"step {step + 1}, folded against the separate passes");
            AssertSameRun(perTensor, folded, $"step {step + 1}, folded against the per-tensor path");
        }
        if (maxNorm < 1) Assert.Equal(steps - 1, clipped);
        else if (maxNorm > 1e6) Assert.Equal(0, clipped);
        else Assert.InRange(clipped, 1, steps - 2);
        var foldedOptimizer = Assert.IsType<FlatBufferAdamW>(folded.Optimizer);
        Assert.Equal(steps - 1, foldedOptimizer.FoldedBucketSteps);
        Assert.Equal(0, ((FlatBufferAdamW)separate.Optimizer).FoldedBucketSteps);
        Assert.Equal(0, foldedOptimizer.FallbackSteps);
    }

    /// <summary>
    /// Without weight decay, rows that get no gradient keep zero moments and come out of a step unchanged: the pass
    /// leaves whole chunks of them alone (the EMA still averages them). Bit for bit the separate passes and the per-tensor
    /// path, with clipping on some steps and a skipped step.
    /// </summary>
    [Fact]
    public void RowsWithoutGradientsUnderNoWeightDecayStayBitIdenticalWhenTheFoldedPassLeavesThemAlone()
    {
        const ulong seed = 515;
        using var perTensor = new StepperRun(seed, flat: false, fold: false, 2.0, reverseEmaOrder: false, weightDecay: 0, sparseRows: true);
        using var separate = new StepperRun(seed, flat: true, fold: false, 2.0, reverseEmaOrder: false, weightDecay: 0, sparseRows: true);
        using var folded = new StepperRun(seed, flat: true, fold: true, 2.0, reverseEmaOrder: false, weightDecay: 0, sparseRows: true);
        for (int step = 0; step < 6; step++)
        {
            bool nan = step == 2;
            OptimizerStepResult a = perTensor.Step(step, seed, nan), b = separate.Step(step, seed, nan), c = folded.Step(step, seed, nan);
            Assert.Equal(b.GradNorm, c.GradNorm);
            if (!nan) Assert.Equal(a.GradNorm, c.GradNorm);
            Assert.Equal(nan ? 0 : 1, c.FoldedBuckets);
            AssertSameRun(separate, folded, $"step {step + 1}, folded against the separate passes");
            AssertSameRun(perTensor, folded, $"step {step + 1}, folded against the per-tensor path");
        }
        // Rows never seen keep zero moments.
        var state = folded.Optimizer.state_dict().State.Cast<AdamW.State>().ToList();
        Assert.True(state[3].exp_avg_sq[10].eq(0).all().item<bool>(), "row 10 of the 17x33 parameter was never given a gradient, so its second moment stays zero");
        Assert.True(state[3].exp_avg_sq[8].gt(0).all().item<bool>(), "row 8 of the 17x33 parameter had a gradient at every step");
    }

    [Fact]
    public void WithTheKernelOffNothingIsFoldedAndTheResultsAreTheSame()
    {
        const ulong seed = 77;
        using var separate = new StepperRun(seed, flat: true, fold: false, 0.2, reverseEmaOrder: false);
        using var unfused = new StepperRun(seed, flat: true, fold: true, 0.2, reverseEmaOrder: false);
        ((FlatBufferAdamW)unfused.Optimizer).FusedKernel = false;
        for (int step = 0; step < 3; step++)
        {
            separate.Step(step, seed, nan: false);
            OptimizerStepResult result = unfused.Step(step, seed, nan: false);
            Assert.Equal(0, result.FoldedBuckets);
        }
        AssertSameRun(separate, unfused, "kernel off");
        Assert.Equal(0, ((FlatBufferAdamW)unfused.Optimizer).FusedKernelBucketSteps);
    }

    [Fact]
    public void TheEmaFoldMatchesLibtorchsMulThenAddWithAlphaOnOddSizes()
    {
        // The EMA arithmetic alone, through the kernel with a zero learning rate and no weight decay (the parameters keep
        // their values), against ema.mul_(decay).add_(param, alpha: 1 - decay) on segments that start and end anywhere.
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var generator = new torch.Generator(5);
        const int n = 70_001;
        torch.Tensor p = torch.randn(n, generator: generator), g = torch.randn(n, generator: generator);
        torch.Tensor m = torch.zeros(n), v = torch.zeros(n);
        foreach (double decay in new[] { 0.9999, 0.999, 0.9, 0.5 })
        {
            torch.Tensor ema = torch.randn(n, generator: generator).mul_(3), expected = ema.clone();
            (long From, long Length)[] segments = [(0, 1), (3, 7), (17, 2_049), (4_000, 65_536 + 5), (69_600, 401)];
            foreach ((long from, long length) in segments)
                expected.narrow(0, from, length).mul_(decay).add_(p.narrow(0, from, length), alpha: 1.0 - decay);
            var update = new AdamWUpdate(1, 0.9, 0.95, 1e-8, 1, 0); // decay 1, step size 0: the parameter is unchanged
            var fold = new FusedAdamWKernel.Fold(null, [.. segments.Select(s => new FusedAdamWKernel.EmaSegment(s.From, s.Length, ema.narrow(0, s.From, s.Length)))], decay, ZeroGradient: false);
            torch.Tensor before = p.clone();
            Assert.True(FusedAdamWKernel.TryApply(update, p, g, m, v, fold));
            Assert.True(SameBits(before, p), "the parameter changed with a zero step");
            Assert.True(SameBits(expected, ema), $"the folded EMA differs from libtorch's at decay {decay}");
        }
    }

    [Fact]
    public void TheClipScaleFoldMatchesLibtorchsMulByTheCoefficientTensor()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var generator = new torch.Generator(6);
        const int n = 20_013;
        foreach (float coefficient in new[] { 1f, 0.999999f, 0.3333333f, 1.17e-3f })
        {
            torch.Tensor p = torch.randn(n, generator: generator), g = torch.randn(n, generator: generator).mul_(10);
            torch.Tensor expected = g.clone().mul_(torch.tensor(coefficient));
            var update = new AdamWUpdate(1, 0.9, 0.95, 1e-8, 1, 0);
            Assert.True(FusedAdamWKernel.TryApply(update, p, g, torch.zeros(n), torch.zeros(n), new FusedAdamWKernel.Fold(coefficient, [], 0.9, ZeroGradient: false)));
            Assert.True(SameBits(expected, g), $"the folded clip scale {coefficient} differs from grad.mul_(coefficient)");
        }
    }
}
