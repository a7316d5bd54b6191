using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using DeviceType = TorchSharp.DeviceType;

namespace Bagel.Training.Optimization;

/// <summary>
/// One parameter group's parameters of one dtype and device as four flat buffers (data, gradient, <c>exp_avg</c>,
/// <c>exp_avg_sq</c>) that the parameters, their gradients and their AdamW states view, for <see cref="FlatBufferAdamW"/>.
/// </summary>
internal sealed class FlatBucket : IDisposable
{
    private readonly Parameter[] _parameters;
    private readonly AdamW.State[] _states;
    private readonly torch.Tensor _data, _grad, _expAvg, _expAvgSq, _scratch;
    private readonly long[] _offsets;

    private FlatBucket(AdamW.ParamGroup group, Parameter[] parameters, AdamW.State[] states, torch.Tensor data, torch.Tensor grad,
        torch.Tensor expAvg, torch.Tensor expAvgSq, torch.Tensor scratch, long[] offsets)
    {
        Group = group;
        _parameters = parameters;
        _states = states;
        (_data, _grad, _expAvg, _expAvgSq, _scratch) = (data, grad, expAvg, expAvgSq, scratch);
        _offsets = offsets;
    }

    /// <summary>The parameter group whose settings (learning rate, betas, ε, weight decay) the step uses.</summary>
    public AdamW.ParamGroup Group { get; }

    /// <summary>Allocates the buffers (and a scratch of <paramref name="chunkElements"/>), copies the parameters and states in and re-points them at their views.</summary>
    public static FlatBucket Create(AdamW.ParamGroup group, Parameter[] parameters, AdamW.State[] states, long chunkElements)
    {
        var options = (AdamW.Options)group.Options;
        if (options.amsgrad == true || options.maximize == true)
            throw new NotSupportedException("FlatBufferAdamW supports neither AMSGrad nor maximize; use TorchSharp's AdamW for those.");
        long[] offsets = new long[parameters.Length + 1];
        for (int i = 0; i < parameters.Length; i++) offsets[i + 1] = offsets[i] + parameters[i].numel();
        long total = offsets[^1];
        Parameter first = parameters[0];
        // The buffers outlive any dispose scope the caller may be in; the views made while filling them do not.
        torch.Tensor Buffer(long size, bool zeros) =>
            (zeros ? torch.zeros(size, first.dtype, first.device) : torch.empty(size, first.dtype, first.device)).DetachFromDisposeScope();
        torch.Tensor data = Buffer(total, zeros: false), grad = Buffer(total, zeros: true);
        torch.Tensor expAvg = Buffer(total, zeros: false), expAvgSq = Buffer(total, zeros: false);
        torch.Tensor scratch = Buffer(Math.Min(total, chunkElements), zeros: false);
        using var scope = torch.NewDisposeScope();
        for (int i = 0; i < parameters.Length; i++)
        {
            Parameter p = parameters[i];
            long n = offsets[i + 1] - offsets[i];
            data.narrow(0, offsets[i], n).copy_(p.detach().reshape(-1));
            p.set_(data.narrow(0, offsets[i], n).view(p.shape));
            states[i].exp_avg = MoveInto(states[i].exp_avg, expAvg, offsets[i], n);
            states[i].exp_avg_sq = MoveInto(states[i].exp_avg_sq, expAvgSq, offsets[i], n);
        }
        return new FlatBucket(group, parameters, states, data, grad, expAvg, expAvgSq, scratch, offsets);
    }

    /// <summary>
    /// Makes every gradient a view of the flat gradient buffer (copying in gradients that autograd allocated); false
    /// when a parameter has no gradient, in which case TorchSharp's loop must run (it skips that parameter).
    /// </summary>
    public bool TryAdoptGradients()
    {
        var grads = new torch.Tensor?[_parameters.Length];
        try
        {
            for (int i = 0; i < _parameters.Length; i++)
            {
                grads[i] = _parameters[i].grad;
                if (grads[i] is null) return false;
            }
            for (int i = 0; i < _parameters.Length; i++)
            {
                if (IsView(grads[i]!, _grad, _offsets[i])) continue;
                long n = _offsets[i + 1] - _offsets[i];
                using torch.Tensor view = _grad.narrow(0, _offsets[i], n);
                view.copy_(grads[i]!.reshape(-1));
                _parameters[i].grad = view.view(_parameters[i].shape); // autograd then accumulates into the view in place
            }
            return true;
        }
        finally
        {
            foreach (torch.Tensor? g in grads) g?.Dispose();
        }
    }

    /// <summary>Zeroes the flat gradient buffer, and each gradient that is not a view of it on its own (as TorchSharp's <c>zero_grad</c>).</summary>
    public void ZeroGradients()
    {
        _grad.zero_();
        for (int i = 0; i < _parameters.Length; i++)
        {
            using torch.Tensor? grad = _parameters[i].grad;
            if (grad is not null && !IsView(grad, _grad, _offsets[i])) grad.zero_();
        }
    }

    /// <summary>True when every parameter and state still views its buffer and all step counts are equal.</summary>
    public bool IsIntact()
    {
        long step = _states[0].step;
        for (int i = 0; i < _parameters.Length; i++)
        {
            if (_states[i].step != step || !IsView(_parameters[i], _data, _offsets[i]) ||
                !IsView(_states[i].exp_avg, _expAvg, _offsets[i]) || !IsView(_states[i].exp_avg_sq, _expAvgSq, _offsets[i])) return false;
        }
        return true;
    }

    /// <summary>
    /// One AdamW step of this bucket: over the buffers when <see cref="TryAdoptGradients"/> and <see cref="IsIntact"/>
    /// allow it (returns true), else TorchSharp's per-parameter loop with the same arithmetic (returns false).
    /// </summary>
    public bool Step()
    {
        var options = (AdamW.Options)Group.Options;
        if (TryAdoptGradients() && IsIntact())
        {
            StepFlat(options);
            return true;
        }
        StepPerParameter(options);
        return false;
    }

    /// <summary>
    /// TorchSharp's per-parameter operations, in its order, chunk by chunk over the buffers (every operation is
    /// element-wise, so chunking changes no result).
    /// </summary>
    private void StepFlat(AdamW.Options options)
    {
        foreach (AdamW.State state in _states) state.step += 1;
        var update = AdamWUpdate.For(options, _states[0].step);
        long total = _data.shape[0], chunk = _scratch.shape[0];
        for (long start = 0; start < total; start += chunk)
        {
            long n = Math.Min(chunk, total - start);
            using torch.Tensor p = _data.narrow(0, start, n), g = _grad.narrow(0, start, n);
            using torch.Tensor m = _expAvg.narrow(0, start, n), v = _expAvgSq.narrow(0, start, n), denominator = _scratch.narrow(0, 0, n);
            update.Apply(p, g, m, v, denominator);
        }
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
        _grad.Dispose();
        _expAvg.Dispose();
        _expAvgSq.Dispose();
        _scratch.Dispose();
    }

    private static torch.Tensor MoveInto(torch.Tensor state, torch.Tensor buffer, long offset, long count)
    {
        torch.Tensor view = buffer.narrow(0, offset, count).view(state.shape);
        view.copy_(state);
        state.Dispose();
        return view.DetachFromDisposeScope();
    }

    /// <summary>
    /// True when <paramref name="tensor"/> is the contiguous slice of <paramref name="buffer"/> at <paramref name="offset"/>.
    /// On the CPU this compares the first elements' addresses; elsewhere TorchSharp exposes no address, so only the
    /// storage offset is compared (a replaced tensor then goes unnoticed unless its offset differs).
    /// </summary>
    private static bool IsView(torch.Tensor tensor, torch.Tensor buffer, long offset)
    {
        if (!tensor.is_contiguous() || tensor.storage_offset() != offset) return false;
        if (tensor.device_type != DeviceType.CPU || tensor.numel() == 0) return true;
        using torch.Tensor flat = tensor.reshape(-1);
        using torch.Tensor first = flat.narrow(0, 0, 1), expected = buffer.narrow(0, offset, 1);
        return Unsafe.AreSame(ref MemoryMarshal.GetReference(first.bytes), ref MemoryMarshal.GetReference(expected.bytes));
    }
}
