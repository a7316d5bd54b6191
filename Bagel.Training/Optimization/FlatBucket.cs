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
    /// One AdamW step of this bucket in one pass of <see cref="FusedAdamWKernel"/> with the stepper's work folded in
    /// (<paramref name="gradScale"/>, the EMA of <paramref name="ema"/>'s pairs whose live tensor is one of this bucket's
    /// parameters, zeroing the gradient buffer). Returns false, having changed nothing, when the kernel cannot take the
    /// bucket (it is not flat and intact, not float32 on the CPU, or the kernel is off); otherwise marks in
    /// <paramref name="covered"/> the pairs whose EMA it updated. Call under no_grad.
    /// </summary>
    public bool TryStepFolded(float gradScale, IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)>? ema, double emaDecay, bool[]? covered)
    {
        // Fits first: on another device or dtype the kernel's calibration (CPU work) never needs to run.
        if (_grad is null || !FusedAdamWKernel.Fits(_data, _grad, _expAvg, _expAvgSq) || !FusedAdamWKernel.IsAvailable || !TryAdoptGradients() || !IsIntact())
            return false;
        List<int> pairs = [];
        List<FusedAdamWKernel.EmaSegment> segments = ema is null ? [] : EmaSegments(ema, pairs);
        var options = (AdamW.Options)Group.Options;
        foreach (AdamW.State state in _states) state.step += 1;
        var update = AdamWUpdate.For(options, _states[0].step);
        if (!FusedAdamWKernel.TryApply(update, _data, _grad, _expAvg, _expAvgSq, new FusedAdamWKernel.Fold(gradScale, segments, emaDecay, ZeroGradient: true)))
            throw new InvalidOperationException("The fused AdamW pass refused a bucket it had accepted."); // Fits and IsAvailable were checked above
        MarkParametersModified();
        if (covered is not null)
        {
            foreach (int i in pairs) covered[i] = true;
        }
        return true;
    }

    /// <summary>
    /// The EMA slots of this bucket's parameters: each pair of <paramref name="pairs"/> whose live tensor requires grad
    /// and is exactly the contiguous slice of the data buffer where one of the parameters lies, and whose EMA tensor is
    /// a contiguous float32 CPU tensor of as many elements outside this bucket's buffers, gives one segment; adjacent
    /// segments whose EMA tensors also lie end to end merge. Adds the indices of the pairs used to <paramref name="used"/>.
    /// </summary>
    private List<FusedAdamWKernel.EmaSegment> EmaSegments(IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)> pairs, List<int> used)
    {
        var byOffset = new Dictionary<long, int>(_parameters.Length);
        for (int k = 0; k < _parameters.Length; k++) byOffset.TryAdd(_offsets[k], k);
        var taken = new bool[_parameters.Length];
        var found = new List<(long Offset, long Length, torch.Tensor Ema)>();
        for (int i = 0; i < pairs.Count; i++)
        {
            (torch.Tensor ema, torch.Tensor live) = pairs[i];
            if (!live.requires_grad || live.dtype != torch.float32 || live.device_type != DeviceType.CPU || !live.is_contiguous()) continue;
            if (ema.dtype != torch.float32 || ema.device_type != DeviceType.CPU || !ema.is_contiguous() || ema.numel() != live.numel()) continue;
            if (!byOffset.TryGetValue(live.storage_offset() - _data.storage_offset(), out int k) || taken[k]) continue;
            if (_offsets[k + 1] - _offsets[k] != live.numel() || !FlatLayout.SameStorage(live, _data)) continue;
            if (FlatLayout.SameStorage(ema, _data) || FlatLayout.SameStorage(ema, _expAvg) || FlatLayout.SameStorage(ema, _expAvgSq) ||
                FlatLayout.SameStorage(ema, _grad!)) continue;
            taken[k] = true;
            used.Add(i);
            found.Add((_offsets[k], live.numel(), ema));
        }
        found.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        var segments = new List<FusedAdamWKernel.EmaSegment>(found.Count);
        int start = 0;
        while (start < found.Count)
        {
            // Merge a run whose EMA tensors lie end to end in one storage, as the bucket's parameters do.
            int end = start + 1;
            long length = found[start].Length;
            torch.Tensor first = found[start].Ema;
            while (end < found.Count && found[end].Offset == found[start].Offset + length &&
                   found[end].Ema.storage_offset() == first.storage_offset() + length && FlatLayout.SameStorage(found[end].Ema, first))
            {
                length += found[end].Length;
                end++;
            }
            segments.Add(end == start + 1
                ? new FusedAdamWKernel.EmaSegment(found[start].Offset, length, first)
                : new FusedAdamWKernel.EmaSegment(found[start].Offset, length, first.as_strided([length], [1], first.storage_offset())));
            start = end;
        }
        return segments;
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
