using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Optimization;

/// <summary>
/// TorchSharp's <see cref="AdamW"/> with its parameters, gradients and moment estimates laid out in one contiguous
/// buffer per parameter group and dtype: each parameter's data, gradient, <c>exp_avg</c> and <c>exp_avg_sq</c> are
/// views into those buffers, and a step runs the same element-wise operations in the same order as TorchSharp's
/// per-parameter loop, in chunks over the buffers, so the weights and state come out bit for bit the same
/// with far fewer kernel launches and no per-step temporaries as large as the biggest parameter (one chunk-sized
/// scratch buffer per bucket instead).
/// <para>
/// It is the default optimizer (<see cref="AdamWOptions.FlatBuffers"/>). Building it moves the model tensor by
/// tensor: each parameter is copied into its slice and re-pointed there before the next one, and the moments are
/// allocated once, zero, in the buffers, so construction never holds a second copy of the model (the gradient buffer
/// is allocated when gradients first arrive, or by <see cref="AttachGradients"/>). Parameters are ordinary views:
/// loading a checkpoint into them in place, the EMA, <see cref="GradientClipping"/> and the non-finite guard all work
/// on them unchanged.
/// </para>
/// <para>
/// The state objects are TorchSharp's own, so <see cref="AdamWStateFile"/> saves and restores this optimizer exactly
/// as the per-parameter one. A bucket (one group's parameters of one dtype and device) steps parameter by parameter,
/// with TorchSharp's arithmetic, whenever the flat layout cannot give the same result: a parameter without a gradient (TorchSharp skips it and its step count lags), step counts
/// that differ, or a parameter, gradient or state tensor that was replaced (for example by TorchSharp's own
/// <c>load_state_dict</c> or by moving the module). <see cref="FlatSteps"/> and <see cref="FallbackSteps"/> count both.
/// AMSGrad and <c>maximize</c> are not supported (the reference uses neither).
/// </para>
/// <para>
/// A float32 bucket on the CPU steps in one pass over its buffers (<see cref="FusedKernel"/>, the default): each
/// element's parameter, gradient and moments are read once and written once, with libtorch's roundings (its fused
/// multiply-adds, and MKL's square root where libtorch uses it), so the results are still bit for bit TorchSharp's.
/// The pass checks itself against libtorch's operations on first use and stays off if a single bit differs
/// (<see cref="FusedKernelUnavailableReason"/>). Other dtypes and devices run libtorch's operations over the buffers.
/// </para>
/// </summary>
public sealed class FlatBufferAdamW : AdamW
{
    /// <summary>
    /// Elements per chunk of a step: 1 Mi (4 MiB per f32 buffer, and the size of the one scratch buffer). On the
    /// benchmark machine (2 cores) chunks of 32 Ki to 1 Mi elements were within a third of each other and 1 Mi the fastest.
    /// </summary>
    public const long DefaultChunkElements = 1 << 20;

    /// <summary>
    /// Parameters of at least this many elements (16 Mi: 64 MiB in float32) get a bucket of their own that keeps
    /// their storage instead of being copied into a shared buffer: merging a tensor that large saves no kernel launch
    /// worth having, and copying it would hold it twice for a moment (a vocabulary embedding is a third of a small model).
    /// </summary>
    public const long StandaloneElements = 1 << 24;

    private readonly List<FlatBucket> _buckets = [];

    // Set before the base constructor runs (it calls add_param_group): a field initializer, not the constructor body.
    private long _chunkElements = DefaultChunkElements;

    /// <summary>
    /// Creates the optimizer over <paramref name="groups"/> (settings as <see cref="AdamW"/>'s constructor) and moves
    /// every parameter into the flat buffers, tensor by tensor; the parameters keep their values and handles. The
    /// moments are allocated once, in the flat buffers (TorchSharp's AdamW would allocate one pair per parameter).
    /// </summary>
    /// <param name="groups">The parameter groups.</param>
    /// <param name="lr">The default learning rate.</param>
    /// <param name="beta1">The default β1.</param>
    /// <param name="beta2">The default β2.</param>
    /// <param name="eps">The default ε.</param>
    /// <param name="weightDecay">The default decoupled weight decay.</param>
    /// <param name="chunkElements">Elements per chunk when a bucket steps with libtorch's operations.</param>
    /// <param name="fusedKernel">The initial <see cref="FusedKernel"/>.</param>
    public FlatBufferAdamW(IEnumerable<ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weightDecay,
        long chunkElements = DefaultChunkElements, bool fusedKernel = true)
        : base(groups, lr, beta1, beta2, eps, weightDecay)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkElements);
        _chunkElements = chunkElements;
        foreach (FlatBucket bucket in _buckets) bucket.ChunkElements = chunkElements;
        FusedKernel = fusedKernel;
    }

    /// <summary>
    /// Steps float32 CPU buckets in one fused pass over their buffers instead of libtorch's nine element-wise
    /// operations (same bits, about half the memory traffic). Default true; false runs libtorch's operations over the
    /// buffers (what <see cref="AdamWOptions.FusedKernel"/> false builds). Can change between steps.
    /// </summary>
    public bool FusedKernel { get; set; }

    /// <summary>
    /// Lets <see cref="OptimizerStepper"/> fold its work around the step into the fused pass of each float32 CPU bucket
    /// (<see cref="FusedKernel"/> must be on too): the gradients are scaled by the clip coefficient as they are read, the
    /// EMA of each parameter whose EMA tensor is known is updated from the new value, and the gradients are zeroed after
    /// they are read, in the same pass over memory, with the same bits as the separate operations. The gradient norm
    /// stays a separate pass before it (the non-finite guard needs it first). Default true; false runs clipping, the
    /// EMA and <c>zero_grad</c> as separate passes. Can change between steps.
    /// </summary>
    public bool FoldStepperWork { get; set; } = true;

    /// <summary>Bucket steps that ran the fused pass with the stepper's clip scale, EMA and zeroing folded in (also counted in <see cref="FusedKernelBucketSteps"/>).</summary>
    public long FoldedBucketSteps { get; private set; }

    /// <summary>
    /// Why the fused pass is off in this process (its calibration against libtorch's operations differed, or libtorch's
    /// square root could not be matched), or null when it is available. Runs the calibration on first use.
    /// </summary>
    public static string? FusedKernelUnavailableReason => FusedAdamWKernel.UnavailableReason;

    /// <summary>
    /// Adds <paramref name="param_group"/> (also called by the base constructor for each group): fills in the
    /// optimizer's defaults as TorchSharp's AdamW does, then lays the group's parameters out in one bucket per dtype
    /// and device, with their AdamW states (step 0, zero moments) as views of the bucket's moment buffers.
    /// </summary>
    /// <exception cref="NotSupportedException">The group asks for AMSGrad or <c>maximize</c>.</exception>
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        ArgumentNullException.ThrowIfNull(param_group);
        var defaults = (Options)_defaults;
        param_group.Options ??= new Options();
        var options = (Options)param_group.Options;
        options.LearningRate ??= defaults.LearningRate;
        options.beta1 ??= defaults.beta1;
        options.beta2 ??= defaults.beta2;
        options.eps ??= defaults.eps;
        options.weight_decay ??= defaults.weight_decay;
        options.amsgrad ??= defaults.amsgrad;
        options.maximize ??= defaults.maximize;
        options.InitialLearningRate = options.LearningRate!.Value;
        if (options.amsgrad == true || options.maximize == true)
            throw new NotSupportedException("FlatBufferAdamW supports neither AMSGrad nor maximize; use TorchSharp's AdamW for those (AdamWOptions.FlatBuffers = false).");
        Parameter[] parameters = [.. param_group.Parameters];
        param_group.Parameters = parameters;
        _parameter_groups.Add(param_group);
        using var noGrad = torch.no_grad();
        // Buckets in order of first appearance: one per dtype and device for the parameters below StandaloneElements,
        // and one per larger parameter.
        foreach (IGrouping<(torch.ScalarType, string, int), Parameter> group in parameters.Select((p, i) => (p, i))
                     .GroupBy(x => (x.p.dtype, x.p.device.ToString(), x.p.numel() >= StandaloneElements ? x.i : -1), x => x.p))
        {
            FlatBucket bucket = FlatBucket.Create((ParamGroup)param_group, [.. group], _chunkElements);
            _buckets.Add(bucket);
            for (int i = 0; i < bucket.Parameters.Count; i++) _state[bucket.Parameters[i].Handle] = bucket.States[i];
        }
    }

    /// <summary>One flat layout: a parameter group's parameters of one dtype and device.</summary>
    /// <param name="GroupIndex">The parameter group's index.</param>
    /// <param name="DType">The dtype of its parameters, gradients and moments.</param>
    /// <param name="Device">The device.</param>
    /// <param name="Tensors">How many parameters it holds.</param>
    /// <param name="Elements">How many elements each of its buffers holds.</param>
    public sealed record BucketInfo(int GroupIndex, torch.ScalarType DType, string Device, int Tensors, long Elements);

    /// <summary>The flat layouts, in step order: one per parameter group, dtype and device.</summary>
    public IReadOnlyList<BucketInfo> Buckets =>
        [.. _buckets.Select(b => new BucketInfo(_parameter_groups.IndexOf(b.Group), b.Parameters[0].dtype, b.Parameters[0].device.ToString(), b.Parameters.Count, b.Elements))];

    /// <summary>Steps on which every bucket ran on its flat buffers.</summary>
    public long FlatSteps { get; private set; }

    /// <summary>Steps on which at least one bucket ran the per-parameter loop because the flat layout did not apply (see the class remarks).</summary>
    public long FallbackSteps { get; private set; }

    /// <summary>Bucket steps that ran the fused pass (<see cref="FusedKernel"/>); each step counts every bucket that did.</summary>
    public long FusedKernelBucketSteps { get; private set; }

    /// <inheritdoc />
    public override torch.Tensor step(Func<torch.Tensor>? closure = null)
    {
        if (closure is not null)
        {
            FallbackSteps++;
            return base.step(closure);
        }
        bool allFlat = true;
        using (torch.no_grad())
        {
            foreach (FlatBucket bucket in _buckets)
            {
                BucketStep how = bucket.Step(FusedKernel);
                allFlat &= how != BucketStep.PerParameter;
                if (how == BucketStep.FusedKernel) FusedKernelBucketSteps++;
            }
        }
        if (allFlat) FlatSteps++;
        else FallbackSteps++;
        return null!; // as the base class without a closure
    }

    /// <summary>What <see cref="StepFolded"/> did: which EMA pairs it updated and which buckets it left with zero gradients.</summary>
    internal sealed record FoldedStep(bool[] CoveredPairs, bool[] ZeroedBuckets)
    {
        /// <summary>How many EMA pairs the fused pass updated.</summary>
        public int CoveredCount => CoveredPairs.Count(c => c);
    }

    /// <summary>
    /// One step with the stepper's work folded in where it can be (see <see cref="FoldStepperWork"/>). Every gradient
    /// must be a view of its bucket's buffer (<see cref="GradientBuffers"/> not null). Each bucket the fused pass can
    /// take multiplies its gradients by <paramref name="coefficient"/> as they are read, steps, updates the EMA of
    /// <paramref name="emaPairs"/> whose live tensor is one of its parameters (<c>ema.mul_(decay).add_(param, 1 −
    /// decay)</c>) and zeroes its gradient buffer; every other bucket has its gradient buffer multiplied by
    /// <paramref name="coefficient"/> with libtorch and steps as in <see cref="step"/>. The caller then updates the EMA
    /// pairs not covered and zeroes the buckets not zeroed (<see cref="ZeroGradients(FoldedStep)"/>).
    /// </summary>
    /// <param name="coefficient">The clip coefficient as <see cref="GradientClipping"/> computes it (a 0-dim tensor), or null for no clipping.</param>
    /// <param name="coefficientValue">Its value, read on the host.</param>
    /// <param name="emaPairs">The EMA's (EMA, live) pairs, or null without an EMA.</param>
    /// <param name="emaDecay">The EMA decay.</param>
    internal FoldedStep StepFolded(torch.Tensor? coefficient, double coefficientValue, IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)>? emaPairs, double emaDecay)
    {
        var covered = new bool[emaPairs?.Count ?? 0];
        var zeroed = new bool[_buckets.Count];
        // The coefficient as libtorch's mul_ by a 0-dim CPU tensor takes it for a float32 tensor: rounded to float32.
        float scale = coefficient is null ? 1f : (float)coefficientValue;
        bool allFlat = true;
        using (var scope = torch.NewDisposeScope())
        using (torch.no_grad())
        {
            for (int b = 0; b < _buckets.Count; b++)
            {
                FlatBucket bucket = _buckets[b];
                if (FusedKernel && bucket.TryStepFolded(scale, emaPairs, emaDecay, covered))
                {
                    zeroed[b] = true;
                    FusedKernelBucketSteps++;
                    FoldedBucketSteps++;
                    continue;
                }
                if (coefficient is not null) bucket.GradientBuffer()?.mul_(coefficient);
                BucketStep how = bucket.Step(FusedKernel);
                allFlat &= how != BucketStep.PerParameter;
                if (how == BucketStep.FusedKernel) FusedKernelBucketSteps++;
            }
        }
        if (allFlat) FlatSteps++;
        else FallbackSteps++;
        return new FoldedStep(covered, zeroed);
    }

    /// <summary>Zeroes the gradients of the buckets <paramref name="folded"/> did not zero (as <see cref="zero_grad"/> for those).</summary>
    internal void ZeroGradients(FoldedStep folded)
    {
        ArgumentNullException.ThrowIfNull(folded);
        using var noGrad = torch.no_grad();
        for (int b = 0; b < _buckets.Count; b++)
        {
            if (!folded.ZeroedBuckets[b]) _buckets[b].ZeroGradients();
        }
    }

    /// <summary>
    /// Gives every parameter a gradient that is a view of its bucket's flat gradient buffer: a zero one where it has
    /// none, a copy of the one it has otherwise. Autograd then accumulates straight into the buffer, and every step
    /// runs flat from the first. Unlike TorchSharp's AdamW, which skips a parameter without a gradient, the
    /// parameters are then stepped with zero gradients (what <see cref="Loop.TrainingSession"/> asks for before the
    /// first step, so a resumed run steps as the straight one).
    /// </summary>
    public void AttachGradients()
    {
        using var noGrad = torch.no_grad();
        foreach (FlatBucket bucket in _buckets) bucket.TryAdoptGradients(zeroMissing: true);
    }

    /// <summary>
    /// The flat gradient buffers, one per bucket, when every parameter's gradient is a view of its bucket's buffer
    /// (then the buffers hold exactly the gradients, and an element-wise operation on them equals the same
    /// operation on each gradient); otherwise null. The buffers belong to the optimizer: do not dispose them.
    /// </summary>
    public IReadOnlyList<torch.Tensor>? GradientBuffers()
    {
        var buffers = new List<torch.Tensor>(_buckets.Count);
        foreach (FlatBucket bucket in _buckets)
        {
            if (bucket.GradientBuffer() is not { } buffer) return null;
            buffers.Add(buffer);
        }
        return buffers;
    }

    /// <summary>Zeroes the gradients: each bucket's flat gradient buffer at once, and any gradient that is not a view of it.</summary>
    public override void zero_grad()
    {
        using var noGrad = torch.no_grad();
        foreach (FlatBucket bucket in _buckets) bucket.ZeroGradients();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            foreach (FlatBucket bucket in _buckets) bucket.Dispose();
        }
    }
}
