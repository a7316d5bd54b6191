using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.Lora;

/// <summary>
/// The LoRA adapters of one model (PEFT's <c>LoraModel</c> with one adapter): built by <see cref="Attach"/> on every
/// <c>Linear</c> whose path matches <see cref="LoraOptions.TargetModules"/>, with the base frozen. Its own state dict is
/// PEFT's saved layout, <c>base_model.model.&lt;module path&gt;.lora_A.weight</c> / <c>.lora_B.weight</c>, so a training
/// checkpoint of the adapters is also a PEFT <c>adapter_model.safetensors</c>. <see cref="LoraAdapterFiles"/> reads and
/// writes the PEFT folder and the merged full checkpoint.
/// </summary>
public sealed class LoraAdapterSet : nn.Module, IAdapterSet
{
    /// <summary>The prefix PEFT puts before module paths in <c>adapter_model.safetensors</c>.</summary>
    public const string KeyPrefix = "base_model.model.";

    private readonly List<LoraLinear> _layers = [];
    private readonly Dictionary<string, nn.Module> _children = new(StringComparer.Ordinal);
    private LoraAdapterSet? _standsInFor; // a bound working copy: the attached set whose place it takes

    private LoraAdapterSet(LoraOptions options, nn.Module? baseModel) : base(nameof(LoraAdapterSet))
    {
        Options = options;
        BaseModel = baseModel;
    }

    /// <summary>The options the adapters were built with.</summary>
    public LoraOptions Options { get; }

    /// <summary>The base model the adapters are attached to; null for a detached copy.</summary>
    public nn.Module? BaseModel { get; }

    /// <summary>The adapters, in the base model's module order.</summary>
    public IReadOnlyList<LoraLinear> Layers => _layers;

    /// <inheritdoc />
    public nn.Module Module => this;

    /// <inheritdoc />
    public IReadOnlyList<string> TargetPaths => [.. _layers.Select(l => l.Path)];

    /// <inheritdoc />
    public bool IsMerged => _layers.Count > 0 && _layers.All(l => l.IsMerged);

    /// <summary>Number of adapter parameters (elements).</summary>
    public long ParameterCount => _layers.Sum(l => l.WeightA.numel() + l.WeightB.numel());

    /// <summary>Turns every adapter's delta on or off in the forward pass (off: the base model's outputs).</summary>
    public bool Enabled
    {
        get => _layers.All(l => l.Enabled);
        set
        {
            foreach (LoraLinear layer in _layers) layer.Enabled = value;
        }
    }

    /// <summary>
    /// Attaches adapters to <paramref name="model"/>: every <c>Linear</c> whose state-dict path matches the targets
    /// gets one (rank and alpha per <see cref="LoraOptions.RankPattern"/> / <see cref="LoraOptions.AlphaPattern"/>),
    /// A drawn in module order from a generator seeded with <see cref="LoraOptions.InitSeed"/>, B zero. With
    /// <paramref name="freezeBase"/> every parameter of the model stops requiring gradients. The model must call its
    /// layers through <c>call</c> (every BAGEL module does) for the hooks to run.
    /// </summary>
    /// <param name="model">The base model (e.g. a <c>BagelModel</c>); adapters go on its parameters' device.</param>
    /// <param name="options">Rank, alpha, dropout, targets.</param>
    /// <param name="freezeBase">Freeze the base (default true).</param>
    /// <returns>The attached set; disposing it (or <see cref="DetachFromBase"/>) removes the hooks and unmerges.</returns>
    /// <exception cref="LoraException">Invalid options, no module matched, a matched module is not a Linear, or a
    /// Linear already carries an adapter.</exception>
    public static LoraAdapterSet Attach(nn.Module model, LoraOptions options, bool freezeBase = true)
    {
        List<(string Path, Linear Layer)> matched = Match(model, options);
        var set = new LoraAdapterSet(options, model);
        try
        {
            using var generator = new Generator((ulong)options.InitSeed);
            foreach ((string path, Linear layer) in matched)
            {
                if (Attached.TryGetValue(layer, out _))
                    throw new LoraException($"{path} already carries a LoRA adapter; dispose the other adapter set first.");
                Parameter weight = layer.weight!;
                LoraLinear adapter = set.Add(path, weight.shape[1], weight.shape[0], weight.device, layer);
                Attached.Add(layer, adapter);
                // PEFT's init_lora_weights=True: kaiming_uniform_(a=sqrt(5)) has bound gain·sqrt(3/fan_in) = 1/sqrt(fan_in).
                double bound = 1.0 / Math.Sqrt(adapter.InFeatures);
                using var noGrad = no_grad();
                using Tensor draw = empty(adapter.WeightA.shape, ScalarType.Float32).uniform_(-bound, bound, generator);
                adapter.WeightA.copy_(draw);
            }
        }
        catch
        {
            set.Dispose();
            throw;
        }
        if (freezeBase)
            foreach (Parameter parameter in model.parameters()) parameter.requires_grad = false;
        return set;
    }

    /// <summary>
    /// The number of adapter parameters <see cref="Attach"/> would create on <paramref name="model"/> with
    /// <paramref name="options"/> (what a LoRA run trains: <c>r·(in + out)</c> per adapted Linear), without attaching.
    /// </summary>
    /// <exception cref="LoraException">As <see cref="Attach"/>: invalid options or targets.</exception>
    public static long CountParameters(nn.Module model, LoraOptions options) =>
        Match(model, options).Sum(m => RankFor(options, m.Path) * (m.Layer.weight!.shape[0] + m.Layer.weight!.shape[1]));

    /// <inheritdoc />
    public nn.Module CreateDetachedTwin() => CreateDetachedCopy();

    /// <summary>A set of the same adapter shapes and names with zero weights, attached to nothing.</summary>
    public LoraAdapterSet CreateDetachedCopy()
    {
        var twin = new LoraAdapterSet(Options, null);
        foreach (LoraLinear layer in _layers)
            twin.Add(layer.Path, layer.InFeatures, layer.OutFeatures, layer.WeightA.device, null, layer.Rank, layer.Alpha);
        return twin;
    }

    /// <inheritdoc />
    public void Merge()
    {
        foreach (LoraLinear layer in _layers) layer.Merge();
    }

    /// <inheritdoc />
    public void Unmerge()
    {
        foreach (LoraLinear layer in _layers) layer.Unmerge();
    }

    /// <summary>Copies another set's adapter weights into this one (same paths and shapes), e.g. the EMA adapters
    /// into the attached set to sample with them.</summary>
    /// <exception cref="LoraException">The sets have different adapters.</exception>
    public void CopyWeightsFrom(LoraAdapterSet other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other._layers.Count != _layers.Count)
            throw new LoraException($"The other adapter set has {other._layers.Count} adapters, this one {_layers.Count}.");
        using var noGrad = no_grad();
        for (int i = 0; i < _layers.Count; i++)
        {
            LoraLinear mine = _layers[i], theirs = other._layers[i];
            if (mine.Path != theirs.Path || !mine.WeightA.shape.SequenceEqual(theirs.WeightA.shape) || !mine.WeightB.shape.SequenceEqual(theirs.WeightB.shape))
                throw new LoraException($"Adapter {i} is {mine.Path} here but {theirs.Path} (or of another shape) in the other set.");
            mine.WeightA.copy_(theirs.WeightA);
            mine.WeightB.copy_(theirs.WeightB);
        }
    }

    /// <summary>
    /// Makes <paramref name="workingCopy"/>, a detached copy of this set (<see cref="CreateDetachedCopy"/>, typically cast
    /// to bf16 by mixed precision), compute the adapters in the base model's forward instead of this set: its hooks run
    /// on the same base layers with its own weights and dtype, this set's hooks add nothing (so the delta is added once),
    /// and gradients reach the copy's parameters. This set keeps its weights, its switches (<see cref="Enabled"/>,
    /// merging) govern the copy too, and <see cref="Merge"/>, the files and <see cref="CopyWeightsFrom"/> still use
    /// its weights. Disposing or detaching the copy hands the forward back to this set.
    /// </summary>
    /// <param name="workingCopy">A detached set with the same adapters (paths, ranks, shapes); any floating dtype.</param>
    /// <exception cref="LoraException">This set is detached, the copy is attached or already bound, or the adapters differ.</exception>
    public void BindWorkingCopy(LoraAdapterSet workingCopy)
    {
        ArgumentNullException.ThrowIfNull(workingCopy);
        if (BaseModel is null) throw new LoraException("This adapter set is detached; bind a working copy to the set attached to the base model.");
        if (workingCopy.BaseModel is not null || workingCopy._standsInFor is not null)
            throw new LoraException("The working copy must be a detached, unbound copy of the adapters (CreateDetachedCopy).");
        if (workingCopy._layers.Count != _layers.Count)
            throw new LoraException($"The working copy has {workingCopy._layers.Count} adapters, this set {_layers.Count}.");
        int bound = 0;
        try
        {
            for (; bound < _layers.Count; bound++) workingCopy._layers[bound].StandInFor(_layers[bound]);
        }
        catch
        {
            for (int i = 0; i < bound; i++) workingCopy._layers[i].DetachFromBase();
            throw;
        }
        workingCopy._standsInFor = this;
    }

    /// <summary>
    /// Until the result is disposed, the deltas in the base model's forward are computed with <paramref name="weights"/>'
    /// A and B (e.g. the EMA copy, to sample with it), in its dtype, whichever hook runs (this set's or a bound working
    /// copy's); the sets' own weights are not touched. Training must not step in between.
    /// </summary>
    /// <param name="weights">A set with the same adapters (e.g. <see cref="CreateDetachedCopy"/>'s EMA copy), or this one.</param>
    /// <returns>Restores the forward to the hooked sets' own weights when disposed.</returns>
    /// <exception cref="LoraException">The sets have different adapters.</exception>
    public IDisposable ComputeWith(LoraAdapterSet weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights._layers.Count != _layers.Count)
            throw new LoraException($"The adapter set to compute with has {weights._layers.Count} adapters, this one {_layers.Count}.");
        try
        {
            for (int i = 0; i < _layers.Count; i++) _layers[i].ComputeWith(weights._layers[i]);
        }
        catch
        {
            foreach (LoraLinear layer in _layers) layer.ComputeWith(null);
            throw;
        }
        return new Restore(_layers);
    }

    private sealed class Restore(List<LoraLinear> layers) : IDisposable
    {
        public void Dispose()
        {
            foreach (LoraLinear layer in layers) layer.ComputeWith(null);
        }
    }

    /// <summary>Unmerges and removes every hook; the base model is then exactly as before <see cref="Attach"/> (its
    /// parameters stay frozen). A bound working copy is unbound (its hooks removed, the attached set's active again).</summary>
    public void DetachFromBase()
    {
        foreach (LoraLinear layer in _layers)
        {
            if (layer.BaseLayer is { } baseLayer) Attached.Remove(baseLayer);
            layer.DetachFromBase();
        }
        _standsInFor = null;
    }

    /// <summary>Sets training mode on the adapters (dropout) and, for an attached set or a bound working copy, on the
    /// base model too.</summary>
    public override void train(bool on = true)
    {
        base.train(on);
        (BaseModel ?? _standsInFor?.BaseModel)?.train(on);
    }

    /// <summary>Sets evaluation mode on the adapters and, for an attached set, on the base model too.</summary>
    public override void eval() => train(false);

    /// <summary>Components are registered explicitly along the module paths.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) DetachFromBase();
        base.Dispose(disposing);
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Linear, LoraLinear> Attached = new();

    /// <summary>Every Linear of <paramref name="model"/> that the targets match, in module order.</summary>
    private static List<(string Path, Linear Layer)> Match(nn.Module model, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        IReadOnlyList<string> problems = options.Validate();
        if (problems.Count > 0) throw new LoraException("Invalid LoRA options: " + string.Join(" ", problems));
        var matched = new List<(string Path, Linear Layer)>();
        var notLinear = new List<string>();
        foreach ((string path, nn.Module module) in model.named_modules())
        {
            if (path.Length == 0 || !LoraTargets.Matches(options.TargetModules, path)) continue;
            if (module is Linear linear) matched.Add((path, linear));
            else if (!options.TargetModules.SequenceEqual([LoraTargets.AllLinear])) notLinear.Add($"{path} ({module.GetType().Name})");
        }
        string targets = string.Join(", ", options.TargetModules);
        if (notLinear.Count > 0)
            throw new LoraException($"lora_targets [{targets}] match modules that are not Linear layers: {string.Join(", ", notLinear.Take(8))}. Target the projections inside them (e.g. mlp.gate_proj rather than mlp).");
        if (matched.Count == 0)
            throw new LoraException($"lora_targets [{targets}] match no Linear of the model. Module paths are the state-dict names, e.g. language_model.model.layers.0.self_attn.q_proj_moe_gen.");
        return matched;
    }

    /// <summary>The rank of the adapter on <paramref name="path"/>: its rank_pattern entry, else the rank.</summary>
    private static int RankFor(LoraOptions options, string path) =>
        LoraTargets.PatternKey(options.RankPattern, path) is { } key ? options.RankPattern.First(p => p.Key == key).Value : options.Rank;

    private LoraLinear Add(string path, long inFeatures, long outFeatures, Device device, Linear? baseLayer, int? rank = null, double? alpha = null)
    {
        int r = rank ?? RankFor(Options, path);
        double a = alpha ?? (LoraTargets.PatternKey(Options.AlphaPattern, path) is { } ak ? Options.AlphaPattern.First(p => p.Key == ak).Value : Options.Alpha);
        var adapter = new LoraLinear(path, inFeatures, outFeatures, r, a, Options.Dropout, Options.UseRsLora, device, baseLayer);
        string[] segments = (KeyPrefix + path).Split('.');
        nn.Module parent = this;
        Dictionary<string, nn.Module> children = _children;
        for (int i = 0; i < segments.Length - 1; i++)
        {
            if (!children.TryGetValue(segments[i], out nn.Module? node))
            {
                node = new LoraPathNode();
                parent.register_module(segments[i], node);
                children[segments[i]] = node;
            }
            parent = node;
            children = ((LoraPathNode)node).Children;
        }
        parent.register_module(segments[^1], adapter);
        children[segments[^1]] = adapter;
        _layers.Add(adapter);
        return adapter;
    }

    /// <summary>A container on the way from the root to an adapter, named after one path segment.</summary>
    private sealed class LoraPathNode() : nn.Module(nameof(LoraPathNode))
    {
        public Dictionary<string, nn.Module> Children { get; } = new(StringComparer.Ordinal);

        protected override void RegisterComponents() { }
    }
}
