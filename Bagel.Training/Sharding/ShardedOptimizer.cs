using Bagel.Core.Distributed;
using Bagel.Training.Distributed;
using Bagel.Training.Optimization;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Sharding;

/// <summary>
/// Optimizer-state, gradient and parameter sharding over an <see cref="IProcessGroup"/> (ZeRO stages 1, 2 and 3; FSDP's
/// <c>SHARD_GRAD_OP</c> and <c>FULL_SHARD</c> for the last two). The trainable parameters are moved, tensor by tensor, into one flat buffer in
/// module order (<see cref="FlatShardLayout"/>, padded to a multiple of the world size W); the module's parameters stay
/// views of it, so the forward and backward run unchanged. Rank r keeps, for its shard <c>[r·S, (r+1)·S)</c> only:
/// a float32 master copy (<see cref="Master"/>), the AdamW moments (a <see cref="FlatBufferAdamW"/> over that one
/// tensor, so the arithmetic and the fused kernel are the data-parallel optimizer's, element for element) and the EMA
/// (<see cref="Ema"/>).
/// <para>
/// A step: <see cref="SynchronizeGradients"/> reduce-scatters the gradient buffer (average over ranks) into the
/// rank's gradient shard; <see cref="ClipGradNorm"/> takes the global norm as the square root of the all-reduced sum
/// of the shards' squared norms and scales the shard; AdamW and the EMA update the shard; <see cref="AfterUpdate"/>
/// all-gathers the shards into the flat parameter buffer. With <see cref="ShardingMode.Gradients"/> the parameters'
/// gradients exist only from the backward to the reduce-scatter, which sends them in chunks and releases each as soon as
/// it is sent (no whole-model gradient buffer); with <see cref="ShardingMode.OptimizerState"/> the gradients stay views of a
/// persistent buffer (as data parallel's). With <see cref="ShardingMode.Parameters"/> there is no whole flat buffer: the
/// master shard is the rank's weights, the decoder layers are gathered and released around each use and their gradients
/// reduced right after their backward (<see cref="LayerShardedParameters"/>), and the parameters outside the decoder
/// layers stay whole, refreshed after each update.
/// </para>
/// <para>
/// Later overlap (not built): the all-gather of the parameters could run in buckets on a second stream (NCCL) or as a
/// non-blocking MPI request, each bucket's gather overlapping the next bucket's AdamW; with per-layer hooks a layer's
/// gather could start while the previous layer computes (FULL_SHARD's prefetch).
/// </para>
/// </summary>
public sealed partial class ShardedOptimizer : IGradientSynchronizer, IOptimizerStepHooks, IDisposable
{
    private readonly Parameter[] _parameters;
    private readonly torch.Tensor? _flatParameters; // the whole padded model, the parameters' storage (not under Parameters)
    private readonly LayerShardedParameters? _layers; // Parameters: the decoder layers' gathers, releases and reductions
    private readonly torch.Tensor _gradientShard;  // the rank's averaged gradient shard: a view of the optimizer's gradient buffer
    private torch.Tensor? _flatGradients;          // OptimizerState: the parameters' gradients view it
    private readonly ILogger? _logger;

    /// <summary>
    /// Moves <paramref name="module"/>'s trainable parameters into the flat buffer and builds the shard's optimizer and EMA.
    /// The EMA starts from the current weights; <see cref="ParametersChanged"/> must follow any load or broadcast.
    /// </summary>
    /// <param name="group">The ranks of the job.</param>
    /// <param name="module">The model; its trainable parameters must be float32 on one device.</param>
    /// <param name="mode"><see cref="ShardingMode.OptimizerState"/> or <see cref="ShardingMode.Gradients"/>.</param>
    /// <param name="adamW">AdamW's settings (one group; <see cref="AdamWOptions.FlatBuffers"/> is implied).</param>
    /// <param name="emaDecay">The EMA decay (the reference's <c>ema</c>).</param>
    /// <param name="logger">Receives one line describing the layout; optional.</param>
    /// <param name="hybrid">Hybrid sharding (<c>_HYBRID_SHARD_ZERO2</c>): shard over <see cref="HybridShardGroups.Shard"/>
    /// and average the gradient shards over <see cref="HybridShardGroups.Replicate"/>; null shards over the whole
    /// <paramref name="group"/>. Owned by the caller.</param>
    /// <exception cref="NotSupportedException">Another mode, or parameters that are not float32 on one device.</exception>
    public ShardedOptimizer(IProcessGroup group, torch.nn.Module module, ShardingMode mode, AdamWOptions adamW, double emaDecay, ILogger? logger = null,
        HybridShardGroups? hybrid = null)
    {
        Group = group ?? throw new ArgumentNullException(nameof(group));
        ShardGroup = hybrid?.Shard ?? group;
        ReplicaGroup = hybrid is { Replicate.WorldSize: > 1 } ? hybrid.Replicate : null;
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(adamW);
        if (mode is not (ShardingMode.OptimizerState or ShardingMode.Gradients or ShardingMode.Parameters))
            throw new NotSupportedException($"{nameof(ShardedOptimizer)} runs {ShardingMode.OptimizerState}, {ShardingMode.Gradients} and {ShardingMode.Parameters}; {mode} is not one of them.");
        Bagel.Training.Ema.EmaUpdate.CheckDecay(emaDecay);
        Mode = mode;
        _logger = logger;
        _parameters = [.. module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.parameter)];
        Layout = FlatShardLayout.Of(module, ShardGroup.WorldSize);
        Parameter first = _parameters[0];
        foreach (Parameter p in _parameters)
        {
            if (p.dtype != torch.float32 || p.device.ToString() != first.device.ToString())
                throw new NotSupportedException($"Sharded training needs float32 trainable parameters on one device; a parameter is {p.dtype} on {p.device} (the first is {first.dtype} on {first.device}). Use precision fp32.");
        }
        using var noGrad = torch.no_grad();
        if (mode == ShardingMode.Parameters)
        {
            // No whole-model buffer: the master shard is copied from the parameters tensor by tensor; the decoder layers
            // are released once the session has loaded and broadcast the weights (ParametersChanged).
            Master = new Parameter(torch.zeros(Layout.ShardElements, torch.float32, first.device).DetachFromDisposeScope(), requires_grad: true);
            CopyShardFromParameters(Master);
        }
        else
        {
            _flatParameters = torch.zeros(Layout.PaddedElements, torch.float32, first.device).DetachFromDisposeScope();
            for (int i = 0; i < _parameters.Length; i++) FlatLayout.MoveInto(_parameters[i], _flatParameters, Layout.Entries[i].Offset, copyValues: true);
            FlatLayout.ReleaseFreedHeapPages();
            using torch.Tensor slice = _flatParameters.narrow(0, Layout.ShardStart(Rank), Layout.ShardElements);
            Master = new Parameter(slice.clone().DetachFromDisposeScope(), requires_grad: true);
        }
        var options = new AdamWOptions
        {
            LearningRate = adamW.LearningRate, Beta1 = adamW.Beta1, Beta2 = adamW.Beta2, Eps = adamW.Eps, WeightDecay = adamW.WeightDecay,
            FlatBuffers = true, FusedKernel = adamW.FusedKernel,
        };
        Optimizer = (FlatBufferAdamW)AdamWFactory.Create([new ParameterGroup("shard", [Master])], options);
        Optimizer.AttachGradients();
        _gradientShard = Optimizer.GradientBuffers()![0];
        Ema = new ShardedEma(this, emaDecay);
        if (mode == ShardingMode.OptimizerState)
        {
            _flatGradients = torch.zeros(Layout.PaddedElements, torch.float32, first.device).DetachFromDisposeScope();
            AttachGradientViews();
        }
        else
        {
            foreach (Parameter p in _parameters) DropGradient(p);
        }
        if (mode == ShardingMode.Parameters) _layers = new LayerShardedParameters(this, _parameters, module);
        if (logger is not null)
            LogLayout(logger, mode, ShardGroup.Rank, ShardGroup.WorldSize, ReplicaGroup?.WorldSize ?? 1, Layout.Entries.Count, Layout.TotalElements, Layout.ShardElements);
    }

    /// <summary>The ranks of the job.</summary>
    public IProcessGroup Group { get; }

    /// <summary>The ranks the state is sharded over: the job's, or under hybrid sharding this rank's shard group.</summary>
    public IProcessGroup ShardGroup { get; }

    /// <summary>Under hybrid sharding with several shard groups, the ranks holding the same shard (the gradient shards are averaged over them); else null.</summary>
    public IProcessGroup? ReplicaGroup { get; }

    /// <summary>Whether this rank's shard group is the first replica (its ranks write the optimizer shard files).</summary>
    public bool IsFirstReplica => ReplicaGroup is null || ReplicaGroup.Rank == 0;

    /// <summary>
    /// Elements per rank in one chunk of the <see cref="ShardingMode.Gradients"/> reduce-scatter: the chunk of all ranks is
    /// about 25 MB (data parallel's bucket size) by default. Can change between steps; the results do not depend on it.
    /// </summary>
    public long ChunkElements
    {
        get => _chunkElements ?? Math.Max(1, DataParallelOptions.DefaultBucketBytes / sizeof(float) / ShardGroup.WorldSize);
        set => _chunkElements = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "ChunkElements must be positive.");
    }

    private long? _chunkElements;

    /// <summary>The decoder layers whose parameters are sharded (<see cref="ShardingMode.Parameters"/>; 0 otherwise).</summary>
    public int ShardedLayers => _layers?.LayerCount ?? 0;

    /// <summary>
    /// <see cref="ShardingMode.Parameters"/>: the most bytes of gathered decoder-layer parameters this rank held at once
    /// since the start (at most the largest layer's, <see cref="LargestLayerBytes"/>, as each layer is released before the
    /// next is gathered); 0 in the other modes.
    /// </summary>
    public long PeakGatheredLayerBytes => _layers?.PeakGatheredLayerBytes ?? 0;

    /// <summary><see cref="ShardingMode.Parameters"/>: the bytes of the largest decoder layer's trainable parameters; 0 otherwise.</summary>
    public long LargestLayerBytes => _layers?.MaxLayerBytes ?? 0;

    /// <summary><see cref="ShardingMode.Parameters"/>: the elements of the root unit (the trainable tensors outside the decoder layers, kept whole); 0 otherwise.</summary>
    public long RootElements => _layers?.RootElements ?? 0;

    /// <summary>
    /// <see cref="ShardingMode.Parameters"/>: makes the module compute with the EMA weights until the result is disposed
    /// (the root unit is refilled from the EMA shards, and each decoder layer is gathered from them when it runs), for
    /// validation renders and evaluations without a whole EMA copy on any rank. Every rank of the job calls it, in step,
    /// between steps; disposing puts the trained weights back.
    /// </summary>
    /// <exception cref="NotSupportedException">Another mode: the weights are whole there, and the EMA is not.</exception>
    public IDisposable ComputeWithEma()
    {
        LayerShardedParameters layers = _layers ?? throw new NotSupportedException($"Computing with the EMA needs parameter sharding ({ShardingMode.Parameters}); in {Mode} every rank holds the whole trained weights and only a shard of the EMA.");
        using (torch.no_grad()) layers.FromEma = true;
        return new EmaScope(layers);
    }

    private sealed class EmaScope(LayerShardedParameters layers) : IDisposable
    {
        private LayerShardedParameters? _layers = layers;

        public void Dispose()
        {
            if (_layers is null) return;
            using (torch.no_grad()) _layers.FromEma = false;
            _layers = null;
        }
    }

    /// <summary>The rank's averaged gradient shard (a view of the optimizer's gradient buffer).</summary>
    internal torch.Tensor GradientShard => _gradientShard;

    /// <summary>This rank's shard index (its rank in <see cref="ShardGroup"/>).</summary>
    public int Rank => ShardGroup.Rank;

    /// <summary>What is sharded.</summary>
    public ShardingMode Mode { get; }

    /// <summary>The flat layout (offsets of every trainable tensor, shard size).</summary>
    public FlatShardLayout Layout { get; }

    /// <summary>This rank's float32 master shard (S elements; padding past the model's end stays zero).</summary>
    public Parameter Master { get; }

    /// <summary>AdamW over <see cref="Master"/>: the moments of this rank's shard only. The scheduler steps its learning rate.</summary>
    public FlatBufferAdamW Optimizer { get; }

    /// <summary>The EMA of this rank's shard.</summary>
    public ShardedEma Ema { get; }

    /// <summary>
    /// Averages the gradients over the ranks into this rank's gradient shard (reduce-scatter). Call it once per step,
    /// after the last micro-batch's backward. Under <see cref="ShardingMode.Gradients"/> the parameters' own gradients are
    /// sent in chunks and released as they go (no whole-model buffer); the next backward allocates them afresh.
    /// </summary>
    public void SynchronizeGradients()
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        if (_layers is not null)
        {
            // The decoder layers were reduced after their backward (over all ranks); the root unit's gradients now.
            _layers.ReduceRootGradients();
            return;
        }
        if (_flatGradients is { } persistent)
        {
            AttachGradientViews(); // a no-op unless something replaced a gradient
            ShardGroup.ReduceScatter(persistent, _gradientShard, ReduceOp.Avg);
        }
        else ReduceScatterInChunks();
        // Hybrid: the mean over the shard group, then over the replicas holding the same shard (equal-sized groups: the global mean).
        ReplicaGroup?.AllReduce(_gradientShard, ReduceOp.Avg);
    }

    /// <summary>
    /// <see cref="ShardingMode.Gradients"/>: the reduce-scatter in chunks of <see cref="ChunkElements"/> per rank, without
    /// a whole-model gradient buffer. Chunk c holds, for every rank r, the flat elements <c>[r·S + c·B, r·S + (c+1)·B)</c>
    /// copied from the parameters' own gradients; its reduce-scatter leaves this rank's part in its gradient shard. A
    /// parameter's gradient is released as soon as all its elements were sent, so the gradients shrink as the chunks go and
    /// the most held is the gradients plus one chunk (W·B elements).
    /// </summary>
    private void ReduceScatterInChunks()
    {
        int world = ShardGroup.WorldSize;
        long s = Layout.ShardElements;
        var grads = new torch.Tensor?[_parameters.Length];
        var sent = new long[_parameters.Length];
        try
        {
            for (int i = 0; i < _parameters.Length; i++)
            {
                using (torch.Tensor? grad = _parameters[i].grad) grads[i] = grad?.reshape(-1); // a view: the storage lives until the last element is sent
                DropGradient(_parameters[i]);
            }
            long b = Math.Min(ChunkElements, s);
            using torch.Tensor chunk = torch.empty(b * world, torch.float32, _gradientShard.device);
            for (long start = 0; start < s; start += b)
            {
                long n = Math.Min(b, s - start);
                using torch.Tensor input = chunk.narrow(0, 0, n * world);
                input.zero_();
                for (int r = 0; r < world; r++) Fill(input.narrow(0, r * n, n), r * s + start, grads, sent);
                using torch.Tensor output = _gradientShard.narrow(0, start, n);
                ShardGroup.ReduceScatter(input, output, ReduceOp.Avg);
            }
        }
        finally
        {
            foreach (torch.Tensor? grad in grads) grad?.Dispose();
        }
    }

    /// <summary>Copies the gradients' elements of flat range <c>[from, from + target.numel())</c> into <paramref name="target"/> and releases finished gradients.</summary>
    private void Fill(torch.Tensor target, long from, torch.Tensor?[] grads, long[] sent)
    {
        using (target)
        {
            long to = from + target.numel();
            for (int i = FirstEntryEndingAfter(from); i < _parameters.Length && Layout.Entries[i].Offset < to; i++)
            {
                FlatShardEntry entry = Layout.Entries[i];
                long lo = Math.Max(from, entry.Offset), hi = Math.Min(to, entry.End);
                if (hi <= lo) continue;
                if (grads[i] is { } grad)
                {
                    using torch.Tensor source = grad.narrow(0, lo - entry.Offset, hi - lo), destination = target.narrow(0, lo - from, hi - lo);
                    destination.copy_(source);
                }
                sent[i] += hi - lo;
                if (sent[i] == entry.Elements && grads[i] is { } done)
                {
                    done.Dispose();
                    grads[i] = null;
                }
            }
        }
    }

    private int FirstEntryEndingAfter(long element)
    {
        int lo = 0, hi = _parameters.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (Layout.Entries[mid].End <= element) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /// <summary>
    /// Clips the gradient shards to a global L2 norm of <paramref name="maxNorm"/> (every rank scales by the same
    /// <c>min(1, maxNorm / (norm + 1e-6))</c>) and returns the global norm before clipping.
    /// </summary>
    public double ClipGradNorm(double maxNorm)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNorm);
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        double local = _gradientShard.norm(2f).to(torch.float64).item<double>();
        double total = Math.Sqrt(ShardGroup.AllReduce([local * local], ReduceOp.Sum, _gradientShard.device)[0]); // one replica's shards cover the model once
        torch.Tensor norm = torch.tensor((float)total, torch.float32, _gradientShard.device);
        torch.Tensor denominator = norm.add(1e-6);
        torch.Tensor coefficient = torch.full_like(denominator, maxNorm).div_(denominator).clamp_max(1.0);
        _gradientShard.mul_(coefficient);
        Loop.HostSync.Count();
        return (float)total;
    }

    /// <summary>All-gathers the updated master shards into the flat parameter buffer (every rank then holds the whole model).</summary>
    public void AfterUpdate()
    {
        using var noGrad = torch.no_grad();
        if (_layers is not null)
        {
            _layers.GatherRoot(); // the decoder layers are gathered when they run
            return;
        }
        using torch.Tensor master = Master.detach();
        ShardGroup.AllGather(master, _flatParameters!);
    }

    /// <summary>Zeroes the gradient shard and, under <see cref="ShardingMode.OptimizerState"/>, the whole gradient buffer.</summary>
    public void ZeroGradients()
    {
        using var noGrad = torch.no_grad();
        Optimizer.zero_grad();
        _flatGradients?.zero_();
    }

    /// <summary>
    /// Takes the master shard from the module's parameters after they were loaded or broadcast, and, unless
    /// <see cref="ShardedEma.Loaded"/>, starts the EMA from them too (as the data-parallel EMA copy starts as the model).
    /// </summary>
    /// <exception cref="InvalidOperationException"><see cref="ShardingMode.Parameters"/>, after the decoder layers were released.</exception>
    public void ParametersChanged()
    {
        using var noGrad = torch.no_grad();
        if (_layers is not null)
        {
            // Parameters: the weights are whole once, as built or loaded; the shard is taken, then the layers are released.
            CopyShardFromParameters(Master);
            if (!Ema.Loaded) Ema.Shard.copy_(Master);
            _layers.ReleaseLayers();
            return;
        }
        using torch.Tensor slice = _flatParameters!.narrow(0, Layout.ShardStart(Rank), Layout.ShardElements);
        Master.copy_(slice);
        if (!Ema.Loaded) Ema.Shard.copy_(slice);
    }

    /// <summary>Copies this rank's elements of every trainable tensor from the module's (whole) parameters into <paramref name="shard"/>.</summary>
    private void CopyShardFromParameters(torch.Tensor shard)
    {
        for (int i = 0; i < _parameters.Length; i++)
        {
            FlatShardEntry entry = Layout.Entries[i];
            (long inTensor, long inShard, long count) = Layout.Overlap(entry, Rank);
            if (count == 0) continue;
            if (_parameters[i].numel() != entry.Elements)
                throw new InvalidOperationException($"{entry.Name} holds {_parameters[i].numel()} of its {entry.Elements} elements: the decoder layers are sharded (released) already. Weights reach a parameter-sharded run through its session's restore, before the first step.");
            using torch.Tensor from = _parameters[i].detach().reshape(-1).narrow(0, inTensor, count), to = shard.narrow(0, inShard, count);
            to.copy_(from);
        }
    }

    /// <summary>
    /// The whole tensor <paramref name="entry"/> of the sharded flat state <paramref name="shard"/> (this rank's S
    /// elements of the master weights or of the EMA), assembled on every rank by one all-reduce of a buffer that holds
    /// this rank's part and −0 elsewhere (x + −0 = x exactly, so the values are the shards' bits). Every rank must call it
    /// for the same entries in the same order. Only the one tensor is allocated.
    /// </summary>
    internal torch.Tensor Gather(FlatShardEntry entry, torch.Tensor shard)
    {
        using var noGrad = torch.no_grad();
        torch.Tensor full = torch.full(entry.Elements, -0.0f, torch.float32, shard.device);
        (long inTensor, long inShard, long count) = Layout.Overlap(entry, Rank);
        if (count > 0)
        {
            using torch.Tensor to = full.narrow(0, inTensor, count), from = shard.narrow(0, inShard, count);
            to.copy_(from);
        }
        ShardGroup.AllReduce(full, ReduceOp.Sum);
        torch.Tensor shaped = full.view(entry.Shape);
        full.Dispose();
        return shaped;
    }

    /// <summary>Releases the flat buffers, the shard's optimizer and EMA (the module's parameters keep the flat parameter storage alive).</summary>
    public void Dispose()
    {
        _layers?.Dispose();
        Optimizer.Dispose();
        Ema.Dispose();
        Master.Dispose();
        _gradientShard.Dispose();
        _flatGradients?.Dispose();
        _flatParameters?.Dispose();
    }

    private void AttachGradientViews()
    {
        torch.Tensor flat = _flatGradients!;
        for (int i = 0; i < _parameters.Length; i++)
        {
            FlatShardEntry entry = Layout.Entries[i];
            using (torch.Tensor? existing = _parameters[i].grad)
            {
                if (existing is not null && FlatLayout.IsSlice(existing, flat, entry.Offset)) continue;
                using torch.Tensor slice = flat.narrow(0, entry.Offset, entry.Elements);
                if (existing is not null) slice.copy_(existing.reshape(-1));
                else slice.zero_();
            }
            using torch.Tensor view = flat.narrow(0, entry.Offset, entry.Elements);
            _parameters[i].grad = view.view(entry.Shape);
        }
    }

    private static void DropGradient(Parameter parameter)
    {
        using torch.Tensor? grad = parameter.grad;
        if (grad is not null) parameter.grad = null;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sharding ({Mode}): shard {Rank} of {WorldSize} (replicated {Replicas} time(s)) keeps the optimizer state and EMA of {ShardElements} of {TotalElements} elements ({Tensors} trainable tensors).")]
    private static partial void LogLayout(ILogger logger, ShardingMode mode, int rank, int worldSize, int replicas, int tensors, long totalElements, long shardElements);
}
