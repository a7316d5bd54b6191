using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Optimization;

/// <summary>
/// One parameter group's parameters of one dtype and device as flat buffers (data, <c>exp_avg</c>, <c>exp_avg_sq</c>,
/// and, once gradients exist, gradient) that the parameters, their gradients and their AdamW states view, for
/// <see cref="FlatBufferAdamW"/>.
/// </summary>
internal sealed class FlatBucket : IDisposable
{
    private readonly Parameter[] _parameters;
    private readonly AdamW.State[] _states;
    private readonly torch.Tensor _data, _expAvg, _expAvgSq;
    private readonly long[] _offsets;
    private torch.Tensor? _grad, _scratch;

    private FlatBucket(AdamW.ParamGroup group, Parameter[] parameters, AdamW.State[] states, torch.Tensor data,
        torch.Tensor expAvg, torch.Tensor expAvgSq, long[] offsets, long chunkElements)
    {
        Group = group;
        _parameters = parameters;
        _states = states;
        (_data, _expAvg, _expAvgSq) = (data, expAvg, expAvgSq);
        _offsets = offsets;
        ChunkElements = chunkElements;
    }

    /// <summary>The parameter group whose settings (learning rate, betas, ε, weight decay) the step uses.</summary>
    public AdamW.ParamGroup Group { get; }

    /// <summary>The parameters, in buffer order.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>The AdamW states, one per parameter, in buffer order (TorchSharp's own objects, viewing the moment buffers).</summary>
    public IReadOnlyList<AdamW.State> States => _states;

    /// <summary>Elements per chunk of a flat step (the scratch buffer's size, allocated at the first step).</summary>
    public long ChunkElements { get; set; }

    /// <summary>Elements in the bucket.</summary>
    public long Elements => _offsets[^1];

    /// <summary>
    /// Builds the bucket tensor by tensor: allocates the data buffer (uninitialised) and the two zero-filled moment
    /// buffers, copies each parameter into its slice and re-points it there (releasing its old storage before the
    /// next one), and makes each state's moments views of their slices, as TorchSharp's <c>zeros_like</c> states
    /// would be. The gradient buffer waits for the first gradients; a scratch of at most <paramref name="chunkElements"/>
    /// waits for the first step. So building holds at most one parameter twice, never the model. Call under no_grad.
    /// </summary>
    public static FlatBucket Create(AdamW.ParamGroup group, Parameter[] parameters, long chunkElements)
    {
        long[] offsets = new long[parameters.Length + 1];
        for (int i = 0; i < parameters.Length; i++) offsets[i + 1] = offsets[i] + parameters[i].numel();
        long total = offsets[^1];
        Parameter first = parameters[0];
        if (parameters.Length == 1 && first.is_contiguous())
        {
            // A bucket of one keeps the parameter's own storage: nothing to copy, so a large tensor is never held twice.
            torch.Tensor own = first.detach().reshape(-1).DetachFromDisposeScope();
            torch.Tensor m = FlatLayout.NewBuffer(total, first, zeros: true), v = FlatLayout.NewBuffer(total, first, zeros: true);
            var state = new AdamW.State(first) { step = 0, exp_avg = Slice(m, 0, first.shape), exp_avg_sq = Slice(v, 0, first.shape) };
            return new FlatBucket(group, parameters, [state], own, m, v, offsets, chunkElements);
        }
        torch.Tensor data = FlatLayout.NewBuffer(total, first, zeros: false);
        torch.Tensor expAvg = FlatLayout.NewBuffer(total, first, zeros: true), expAvgSq = FlatLayout.NewBuffer(total, first, zeros: true);
        var states = new AdamW.State[parameters.Length];
        for (int i = 0; i < parameters.Length; i++)
        {
            Parameter p = parameters[i];
            FlatLayout.MoveInto(p, data, offsets[i], copyValues: true);
            states[i] = new AdamW.State(p) { step = 0, exp_avg = Slice(expAvg, offsets[i], p.shape), exp_avg_sq = Slice(expAvgSq, offsets[i], p.shape) };
        }
        FlatLayout.ReleaseFreedHeapPages();
        return new FlatBucket(group, parameters, states, data, expAvg, expAvgSq, offsets, chunkElements);
    }

    /// <summary>
    /// Makes every gradient a view of the flat gradient buffer (allocating it on first use and copying in gradients
    /// that autograd allocated); false when a parameter has no gradient, in which case TorchSharp's loop must run (it
    /// skips that parameter). With <paramref name="zeroMissing"/> a parameter without a gradient gets a zero one
    /// instead, and the result is always true.
    /// </summary>
    public bool TryAdoptGradients(bool zeroMissing = false)
    {
        var grads = new torch.Tensor?[_parameters.Length];
        try
        {
            for (int i = 0; i < _parameters.Length; i++)
            {
                grads[i] = _parameters[i].grad;
                if (grads[i] is null && !zeroMissing) return false;
            }
            _grad ??= FlatLayout.NewBuffer(Elements, _data, zeros: false);
            for (int i = 0; i < _parameters.Length; i++)
            {
                if (grads[i] is { } existing && FlatLayout.IsSlice(existing, _grad, _offsets[i])) continue;
                long n = _offsets[i + 1] - _offsets[i];
                using torch.Tensor view = _grad.narrow(0, _offsets[i], n);
                if (grads[i] is { } allocated) view.copy_(allocated.reshape(-1));
                else view.zero_();
                // Autograd then accumulates into the view in place; the tensor it allocated is released here.
                _parameters[i].grad = view.view(_parameters[i].shape);
            }
            return true;
        }
        finally
        {
            foreach (torch.Tensor? g in grads) g?.Dispose();
        }
    }

    /// <summary>
    /// The flat gradient buffer when every parameter's gradient is its slice (so the buffer holds exactly the
    /// gradients), else null.
    /// </summary>
    public torch.Tensor? GradientBuffer()
    {
        if (_grad is null) return null;
        for (int i = 0; i < _parameters.Length; i++)
        {
            using torch.Tensor? grad = _parameters[i].grad;
            if (grad is null || !FlatLayout.IsSlice(grad, _grad, _offsets[i])) return null;
        }
        return _grad;
    }

    /// <summary>Zeroes the flat gradient buffer, and each gradient that is not a view of it on its own (as TorchSharp's <c>zero_grad</c>).</summary>
    public void ZeroGradients()
    {
        _grad?.zero_();
        for (int i = 0; i < _parameters.Length; i++)
        {
            using torch.Tensor? grad = _parameters[i].grad;
            if (grad is not null && (_grad is null || !FlatLayout.IsSlice(grad, _grad, _offsets[i]))) grad.zero_();
        }
    }

    /// <summary>True when every parameter and state still views its buffer and all step counts are equal.</summary>
    public bool IsIntact()
    {
        long step = _states[0].step;
        for (int i = 0; i < _parameters.Length; i++)
        {
            if (_states[i].step != step || !FlatLayout.IsSlice(_parameters[i], _data, _offsets[i]) ||
                !FlatLayout.IsSlice(_states[i].exp_avg, _expAvg, _offsets[i]) || !FlatLayout.IsSlice(_states[i].exp_avg_sq, _expAvgSq, _offsets[i])) return false;
        }
        return true;
    }

    /// <summary>
    /// One AdamW step of this bucket: over the buffers when <see cref="TryAdoptGradients"/> and <see cref="IsIntact"/>
    /// allow it (in one fused pass when <paramref name="fusedKernel"/> is set and it applies), else TorchSharp's
    /// per-parameter loop with the same arithmetic. Returns which ran.
    /// </summary>
    public BucketStep Step(bool fusedKernel)
    {
        var options = (AdamW.Options)Group.Options;
        if (TryAdoptGradients() && IsIntact())
        {
            BucketStep how = StepFlat(options, fusedKernel);
            MarkParametersModified();
            return how;
        }
        StepPerParameter(options);
        return BucketStep.PerParameter;
    }

    /// <summary>
    /// Bumps each parameter's version counter, as TorchSharp's in-place operations on it would, so that autograd
    /// still refuses a graph that saved a parameter before the step. The parameters were <c>set_</c> to slices of the
    /// buffer (they do not share its counter), so writing the buffer does not bump them; an in-place operation on
    /// none of each parameter's elements does, at one dispatch per parameter.
    /// </summary>
    private void MarkParametersModified()
    {
        foreach (Parameter parameter in _parameters)
        {
            using torch.Tensor flat = parameter.view(-1);
            using torch.Tensor none = flat.narrow(0, 0, 0);
            none.zero_();
        }
    }

    /// <summary>
    /// TorchSharp's per-parameter operations, in its order, over the buffers: in one pass of
    /// <see cref="FusedAdamWKernel"/> when <paramref name="fusedKernel"/> is set and the buffers are float32 on the CPU,
    /// else as libtorch operations chunk by chunk (every operation is element-wise, so chunking changes no result).
    /// </summary>
    private BucketStep StepFlat(AdamW.Options options, bool fusedKernel)
    {
        foreach (AdamW.State state in _states) state.step += 1;
        var update = AdamWUpdate.For(options, _states[0].step);
        if (fusedKernel && FusedAdamWKernel.TryApply(update, _data, _grad!, _expAvg, _expAvgSq)) return BucketStep.FusedKernel;
        _scratch ??= FlatLayout.NewBuffer(Math.Min(Elements, ChunkElements), _data, zeros: false);
        long total = Elements, chunk = _scratch.shape[0];
        for (long start = 0; start < total; start += chunk)
        {
            long n = Math.Min(chunk, total - start);
            using torch.Tensor p = _data.narrow(0, start, n), g = _grad!.narrow(0, start, n);
            using torch.Tensor m = _expAvg.narrow(0, start, n), v = _expAvgSq.narrow(0, start, n), denominator = _scratch.narrow(0, 0, n);
            update.Apply(p, g, m, v, denominator);
        }
        return BucketStep.FlatOperations;
    }

    /// <summary>TorchSharp's loop: parameters without a gradient are skipped and keep their step count.</summary>
    private void StepPerParameter(AdamW.Options options)
    {
        for (int i = 0; i < _parameters.Length; i++)
        {
            using torch.Tensor? grad = _parameters[i].grad;
            if (grad is null) continue;
            AdamW.State state = _states[i];
            state.step += 1;
            using torch.Tensor denominator = torch.empty_like(state.exp_avg_sq);
            AdamWUpdate.For(options, state.step).Apply(_parameters[i], grad, state.exp_avg, state.exp_avg_sq, denominator);
        }
    }

    public void Dispose()
    {
        _data.Dispose();
        _grad?.Dispose();
        _expAvg.Dispose();
        _expAvgSq.Dispose();
        _scratch?.Dispose();
    }

    private static torch.Tensor Slice(torch.Tensor buffer, long offset, long[] shape)
    {
        using torch.Tensor flat = buffer.narrow(0, offset, shape.Aggregate(1L, (a, b) => a * b));
        return flat.view(shape).DetachFromDisposeScope();
    }
}

/// <summary>How a <see cref="FlatBucket"/> stepped.</summary>
internal enum BucketStep
{
    /// <summary>One pass of <see cref="FusedAdamWKernel"/> over the flat buffers.</summary>
    FusedKernel,

    /// <summary>libtorch's element-wise operations, chunk by chunk over the flat buffers.</summary>
    FlatOperations,

    /// <summary>TorchSharp's per-parameter loop (the flat layout did not apply).</summary>
    PerParameter,
}
