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
/// The state objects are TorchSharp's own, so <see cref="AdamWStateFile"/> saves and restores this optimizer exactly
/// as the per-parameter one. A bucket (one group's parameters of one dtype and device) steps parameter by parameter,
/// with TorchSharp's arithmetic, whenever the flat layout cannot give the same result: a parameter without a gradient (TorchSharp skips it and its step count lags), step counts
/// that differ, or a parameter, gradient or state tensor that was replaced (for example by TorchSharp's own
/// <c>load_state_dict</c> or by moving the module). <see cref="FlatSteps"/> and <see cref="FallbackSteps"/> count both.
/// AMSGrad and <c>maximize</c> are not supported (the reference uses neither).
/// </para>
/// </summary>
public sealed class FlatBufferAdamW : AdamW
{
    /// <summary>
    /// Elements per chunk of a step: 1 Mi (4 MiB per f32 buffer, and the size of the one scratch buffer). On the
    /// benchmark machine (2 cores) chunks of 32 Ki to 1 Mi elements were within a third of each other and 1 Mi the fastest.
    /// </summary>
    public const long DefaultChunkElements = 1 << 20;

    private readonly List<FlatBucket> _buckets = [];

    /// <summary>
    /// Creates the optimizer over <paramref name="groups"/> (settings as <see cref="AdamW"/>'s constructor) and moves
    /// every parameter, its gradient and its state into the flat buffers; the parameters keep their values and handles.
    /// </summary>
    public FlatBufferAdamW(IEnumerable<ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weightDecay,
        long chunkElements = DefaultChunkElements)
        : base(groups, lr, beta1, beta2, eps, weightDecay)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkElements);
        using var noGrad = torch.no_grad();
        foreach (ParamGroup group in ParamGroups)
        {
            foreach (IGrouping<(torch.ScalarType, string), Parameter> bucket in group.Parameters.GroupBy(p => (p.dtype, p.device.ToString())))
                _buckets.Add(FlatBucket.Create(group, [.. bucket], [.. bucket.Select(p => (State)_state[p.Handle])], chunkElements));
        }
    }

    /// <summary>Steps on which every bucket ran on its flat buffers.</summary>
    public long FlatSteps { get; private set; }

    /// <summary>Steps on which at least one bucket ran the per-parameter loop because the flat layout did not apply (see the class remarks).</summary>
    public long FallbackSteps { get; private set; }

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
            foreach (FlatBucket bucket in _buckets) allFlat &= bucket.Step();
        }
        if (allFlat) FlatSteps++;
        else FallbackSteps++;
        return null!; // as the base class without a closure
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
