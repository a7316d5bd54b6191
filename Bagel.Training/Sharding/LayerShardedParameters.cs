using Bagel.Core.Distributed;
using Bagel.Models.Memory;
using Bagel.Models.Qwen2;
using Bagel.Training.Distributed;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Sharding;

/// <summary>
/// The parameter side of <see cref="ShardingMode.Parameters"/> (FULL_SHARD, and HYBRID_SHARD within shard groups):
/// which trainable tensors belong to which decoder layer, and the gathers, releases and gradient reductions around
/// each layer, installed as the <see cref="IDecoderLayerHooks"/> of every <see cref="Qwen2Model"/> in the module.
/// </summary>
/// <remarks>
/// <para><b>Units.</b> Every decoder layer is a unit: its trainable tensors (contiguous in the flat layout, or in a few
/// runs when a layer's tensors are interleaved with others). Everything else trainable is the root unit, kept whole on
/// every rank and refreshed from the master shards after each update (<see cref="GatherRoot"/>); its gradients are
/// reduced once per step (<see cref="ReduceRootGradients"/>), as data parallelism reduces them.</para>
/// <para><b>A layer.</b> Before its forward and before its recompute in the backward, the layer's elements are
/// assembled from their owners' master shards into one fresh buffer (for every shard the layer overlaps, a broadcast of
/// the overlap from its owner: each element is sent once) and the layer's parameters become views of it; after the
/// forward, and after the backward, the parameters are set to empty tensors and the buffer is freed, so outside a layer's
/// own computation no rank holds it. After the backward the layer's gradients are copied (in buckets of about 25 MB)
/// into a buffer that is averaged over all ranks of the job by an all-reduce (as data parallelism's buckets are: sum, then division), and each rank adds
/// the part in its own shard to its gradient shard, which therefore accumulates over micro-batches; the parameters'
/// gradients are dropped at once.</para>
/// <para><b>Overlap, later.</b> The gathers run on the compute thread, in order. Because the unit of layer <c>l + 1</c>
/// is known when layer <c>l</c> starts, its gather could be posted as non-blocking broadcasts (MPI <c>Ibcast</c>, which
/// the process group already uses underneath, or a second CUDA stream with NCCL) in <see cref="IDecoderLayerHooks.BeforeForward"/> of layer
/// <c>l</c> and waited for in <see cref="IDecoderLayerHooks.BeforeForward"/> of layer <c>l + 1</c> (the backward: layer <c>l − 1</c>'s
/// gather posted in <see cref="IDecoderLayerHooks.AfterBackward"/> of layer <c>l</c>), holding two layers at a time, as FSDP's forward and
/// backward prefetch do; the gradient all-reduce could likewise run while the next layer recomputes. The hooks already
/// have the order this needs; only the waits would move.</para>
/// <para><b>Traffic.</b> Each element is broadcast once per gather (as an all-gather sends it), but the gradients go
/// through an all-reduce of the whole layer: twice the bytes of a reduce-scatter, because a layer's elements do not fall
/// evenly on the ranks in the global flat layout (which keeps checkpoints re-sliceable for any world size and mode). A
/// per-unit balanced layout would allow a true reduce-scatter; not built.</para>
/// </remarks>
internal sealed class LayerShardedParameters : IDisposable
{
    private readonly ShardedOptimizer _owner;
    private readonly Parameter[] _parameters;
    private readonly int[] _rootEntries;
    private readonly List<(Qwen2Model Model, Hooks Hooks)> _installed = [];
    private long _liveBytes;
    private bool _fromEma;

    public LayerShardedParameters(ShardedOptimizer owner, Parameter[] parameters, torch.nn.Module module)
    {
        _owner = owner;
        _parameters = parameters;
        var entryOf = new Dictionary<IntPtr, int>();
        for (int i = 0; i < parameters.Length; i++) entryOf[parameters[i].Handle] = i;
        var inLayer = new bool[parameters.Length];
        foreach (Qwen2Model model in module.modules().OfType<Qwen2Model>())
        {
            var units = new List<Unit>();
            foreach (Qwen2PackedDecoderLayer layer in model.Layers)
            {
                int[] entries = [.. layer.parameters().Where(p => p.requires_grad).Select(p => entryOf.TryGetValue(p.Handle, out int i) ? i : -1).Where(i => i >= 0).Order()];
                foreach (int i in entries) inLayer[i] = true;
                units.Add(new Unit(this, entries));
            }
            var hooks = new Hooks([.. units]);
            if (model.LayerHooks is not null)
                throw new InvalidOperationException($"A decoder-layer hook ({model.LayerHooks.GetType().Name}) is installed already; parameter sharding installs its own.");
            model.LayerHooks = hooks;
            model.GradientCheckpointing = true; // the layers are released after their forward: the backward recomputes them
            _installed.Add((model, hooks));
        }
        _rootEntries = [.. Enumerable.Range(0, parameters.Length).Where(i => !inLayer[i])];
        LayerCount = _installed.Sum(m => m.Hooks.Units.Length);
        MaxLayerBytes = _installed.SelectMany(m => m.Hooks.Units).Select(u => u.Elements * sizeof(float)).DefaultIfEmpty(0).Max();
        RootElements = _rootEntries.Sum(i => owner.Layout.Entries[i].Elements);
    }

    /// <summary>The decoder layers whose parameters are sharded.</summary>
    public int LayerCount { get; }

    /// <summary>The elements of the root unit (kept whole on every rank).</summary>
    public long RootElements { get; }

    /// <summary>The bytes of the largest decoder layer's trainable parameters.</summary>
    public long MaxLayerBytes { get; }

    /// <summary>The most bytes of gathered decoder-layer parameters held at once since the start.</summary>
    public long PeakGatheredLayerBytes { get; private set; }

    /// <summary>Whether any decoder layer is whole now (between a gather and its release).</summary>
    public bool AnyLayerGathered => _liveBytes > 0;

    /// <summary>Releases every decoder layer's parameters (after the master shards were taken from them).</summary>
    public void ReleaseLayers()
    {
        foreach (Unit unit in _installed.SelectMany(m => m.Hooks.Units)) unit.Release(force: true);
        Optimization.FlatLayout.ReleaseFreedHeapPages(); // the layers' storage, freed tensor by tensor, back to the system
    }

    /// <summary>
    /// Whether the gathers read the EMA shards instead of the master shards (a render with the EMA weights); setting it
    /// refreshes the root unit from the new source. Every rank sets it, in step.
    /// </summary>
    public bool FromEma
    {
        get => _fromEma;
        set
        {
            if (_fromEma == value) return;
            if (AnyLayerGathered) throw new InvalidOperationException("A decoder layer is gathered; switch between the EMA and the trained weights between forwards only.");
            _fromEma = value;
            GatherRoot();
        }
    }

    private torch.Tensor Source => _fromEma ? _owner.Ema.Shard : _owner.Master;

    /// <summary>Refreshes the root unit's parameters from the master shards, or the EMA shards under <see cref="FromEma"/> (every rank calls it, in step).</summary>
    public void GatherRoot()
    {
        using var noGrad = torch.no_grad();
        foreach (int i in _rootEntries)
        {
            FlatShardEntry entry = _owner.Layout.Entries[i];
            using torch.Tensor flat = _parameters[i].detach().view(-1);
            GatherRange(entry.Offset, entry.End, flat);
        }
    }

    /// <summary>
    /// Averages the root unit's gradients over all ranks (in buckets of about 25 MB) and adds each rank's part to its
    /// gradient shard; the parameters' gradients are dropped. Also reduces any decoder layer still gathered (a forward
    /// without activation checkpointing, whose graph kept the layer), then releases it.
    /// </summary>
    public void ReduceRootGradients()
    {
        using var noGrad = torch.no_grad();
        foreach (Unit unit in _installed.SelectMany(m => m.Hooks.Units).Where(u => u.Gathered))
        {
            unit.ReduceGradients();
            unit.Release(force: true);
        }
        ReduceInBuckets(_rootEntries);
    }

    /// <summary>
    /// Reduces the gradients of <paramref name="entries"/> in buckets of about 25 MB (a tensor larger than that is a
    /// bucket of its own), so the extra memory is one bucket; each parameter's gradient is dropped once copied.
    /// </summary>
    private void ReduceInBuckets(int[] entries)
    {
        long bucket = DataParallelOptions.DefaultBucketBytes / sizeof(float);
        int start = 0;
        while (start < entries.Length)
        {
            int end = start;
            long elements = 0;
            while (end < entries.Length && (end == start || elements + _owner.Layout.Entries[entries[end]].Elements <= bucket))
                elements += _owner.Layout.Entries[entries[end++]].Elements;
            ReduceEntries(entries[start..end], elements);
            start = end;
        }
    }

    /// <summary>
    /// Averages the gradients of <paramref name="entries"/> over all ranks in one buffer of <paramref name="elements"/>,
    /// adds this rank's part to its gradient shard and drops the parameters' gradients.
    /// </summary>
    private void ReduceEntries(int[] entries, long elements)
    {
        using var scope = torch.NewDisposeScope();
        torch.Tensor buffer = torch.zeros(elements, torch.float32, _owner.Master.device);
        long position = 0;
        foreach (int i in entries)
        {
            FlatShardEntry entry = _owner.Layout.Entries[i];
            using (torch.Tensor? grad = _parameters[i].grad)
            {
                if (grad is not null)
                {
                    buffer.narrow(0, position, entry.Elements).copy_(grad.reshape(-1));
                    _parameters[i].grad = null;
                }
            }
            position += entry.Elements;
        }
        _owner.Group.AllReduce(buffer, ReduceOp.Avg); // over every rank: the mean data parallelism takes (hybrid too)
        torch.Tensor shard = _owner.GradientShard;
        position = 0;
        foreach (int i in entries)
        {
            FlatShardEntry entry = _owner.Layout.Entries[i];
            (long inTensor, long inShard, long count) = _owner.Layout.Overlap(entry, _owner.Rank);
            if (count > 0) shard.narrow(0, inShard, count).add_(buffer.narrow(0, position + inTensor, count));
            position += entry.Elements;
        }
    }

    /// <summary>
    /// Fills <paramref name="target"/> with the flat elements <c>[from, to)</c> from the master shards: for every shard
    /// that overlaps the range, its owner broadcasts the overlap. Every rank of the shard group calls it, in step.
    /// </summary>
    private void GatherRange(long from, long to, torch.Tensor target)
    {
        FlatShardLayout layout = _owner.Layout;
        IProcessGroup group = _owner.ShardGroup;
        for (int r = 0; r < layout.Shards; r++)
        {
            long lo = Math.Max(from, layout.ShardStart(r)), hi = Math.Min(to, layout.ShardStart(r) + layout.ShardElements);
            if (hi <= lo) continue;
            using torch.Tensor segment = target.narrow(0, lo - from, hi - lo);
            if (r == group.Rank)
            {
                using torch.Tensor mine = Source.detach().narrow(0, lo - layout.ShardStart(r), hi - lo);
                segment.copy_(mine);
            }
            group.Broadcast(segment, root: r);
        }
    }

    /// <summary>Removes the hooks (the layers stay as they are).</summary>
    public void Dispose()
    {
        foreach ((Qwen2Model model, Hooks hooks) in _installed)
        {
            if (ReferenceEquals(model.LayerHooks, hooks)) model.LayerHooks = null;
            foreach (Unit unit in hooks.Units) unit.DisposeBuffer();
        }
        _installed.Clear();
    }

    /// <summary>One decoder layer's trainable tensors and, while it is gathered, their buffer.</summary>
    private sealed class Unit
    {
        private readonly LayerShardedParameters _owner;
        private readonly int[] _entries;
        private torch.Tensor? _full;

        public Unit(LayerShardedParameters owner, int[] entries)
        {
            _owner = owner;
            _entries = entries;
            Elements = entries.Sum(i => owner._owner.Layout.Entries[i].Elements);
        }

        public long Elements { get; }

        public bool Gathered => _full is not null;

        /// <summary>Assembles the layer from the master shards into a fresh buffer; the parameters become views of it.</summary>
        public void Gather()
        {
            if (_entries.Length == 0) return;
            if (_full is not null) Release(force: true); // a forward without a backward (evaluation) left it: re-gather fresh weights
            FlatShardLayout layout = _owner._owner.Layout;
            _full = torch.empty(Elements, torch.float32, _owner._owner.Master.device).DetachFromDisposeScope();
            long position = 0;
            int k = 0;
            while (k < _entries.Length)
            {
                // A run of entries adjacent in the flat layout is gathered in one go.
                int end = k + 1;
                while (end < _entries.Length && _entries[end] == _entries[end - 1] + 1) end++;
                long from = layout.Entries[_entries[k]].Offset, to = layout.Entries[_entries[end - 1]].End;
                using (torch.Tensor target = _full.narrow(0, position, to - from)) _owner.GatherRange(from, to, target);
                position += to - from;
                k = end;
            }
            position = 0;
            foreach (int i in _entries)
            {
                FlatShardEntry entry = layout.Entries[i];
                using torch.Tensor slice = _full.narrow(0, position, entry.Elements);
                _owner._parameters[i].set_(slice.view(entry.Shape));
                position += entry.Elements;
            }
            _owner._liveBytes += Elements * sizeof(float);
            _owner.PeakGatheredLayerBytes = Math.Max(_owner.PeakGatheredLayerBytes, _owner._liveBytes);
        }

        /// <summary>Averages the layer's gradients over the ranks into the gradient shards and drops them.</summary>
        public void ReduceGradients()
        {
            if (_entries.Length > 0) _owner.ReduceInBuckets(_entries);
        }

        /// <summary>Sets the layer's parameters to empty tensors and frees the buffer.</summary>
        public void Release(bool force)
        {
            if (_entries.Length == 0 || (!force && _full is null)) return;
            torch.Device device = _owner._owner.Master.device;
            foreach (int i in _entries)
            {
                using torch.Tensor empty = torch.empty(0, torch.float32, device);
                _owner._parameters[i].set_(empty);
            }
            if (_full is not null)
            {
                _full.Dispose();
                _full = null;
                _owner._liveBytes -= Elements * sizeof(float);
            }
        }

        public void DisposeBuffer()
        {
            _full?.Dispose();
            _full = null;
        }
    }

    /// <summary>The hooks of one <see cref="Qwen2Model"/>: layer index → unit.</summary>
    private sealed class Hooks(Unit[] units) : IDecoderLayerHooks
    {
        public Unit[] Units { get; } = units;

        public void BeforeForward(int layerIndex, bool parametersReleasable) => Units[layerIndex].Gather();

        public void AfterForward(int layerIndex, bool parametersReleasable)
        {
            // Without activation checkpointing the graph holds the layer: it stays whole until the step reduces it.
            if (parametersReleasable) Units[layerIndex].Release(force: false);
        }

        public void BeforeBackward(int layerIndex) => Units[layerIndex].Gather();

        public void AfterBackward(int layerIndex)
        {
            Units[layerIndex].ReduceGradients();
            Units[layerIndex].Release(force: false);
        }
    }
}
