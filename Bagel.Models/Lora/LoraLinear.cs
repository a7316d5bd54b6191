using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.Lora;

/// <summary>
/// One low-rank adapter on one <c>Linear</c> (PEFT's <c>lora.Linear</c> for a single adapter): trainable
/// <c>lora_A</c> [r, in] and <c>lora_B</c> [out, r] (no biases, PEFT's <c>bias="none"</c>), applied by a forward hook on
/// the base layer as <c>y = base(x) + scale·lora_B(lora_A(dropout(x)))</c>. The base layer is not changed or wrapped,
/// so the model's state dict keeps the reference's names. The adapter computes in its own dtype (float32): the input is
/// cast to it and the sum is cast back to the base output's dtype, as PEFT does, so a frozen bf16 base works unchanged.
/// A detached instance (no base layer; <see cref="LoraAdapterSet.CreateDetachedTwin"/>) only holds weights, e.g. the
/// EMA copy of the adapters, or stands in for the attached adapter in the base layer's forward
/// (<see cref="LoraAdapterSet.BindWorkingCopy"/>: the bf16 working copy of mixed precision, whose weights are the cast of
/// the float32 ones and whose hook then runs instead of the attached adapter's).
/// </summary>
public sealed class LoraLinear : nn.Module
{
#pragma warning disable IDE1006 // PEFT's parameter names
    private readonly LoraFactor lora_A;
    private readonly LoraFactor lora_B;
#pragma warning restore IDE1006
    private readonly Linear? _base;
    private Action? _removeHook;
    private Tensor? _baseWeightBeforeMerge;
    private LoraLinear? _standIn;     // on an attached adapter: the working copy whose hook runs instead of this one's
    private LoraLinear? _standsInFor; // on a working copy: the attached adapter it stands in for
    private LoraLinear? _weightsFrom; // on an attached adapter: whose A and B the forward uses (LoraAdapterSet.ComputeWith)

    internal LoraLinear(string path, long inFeatures, long outFeatures, int rank, double alpha, double dropout, bool useRsLora,
        Device device, Linear? baseLayer) : base(nameof(LoraLinear))
    {
        Path = path;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Rank = rank;
        Alpha = alpha;
        DropoutProbability = dropout;
        Scaling = useRsLora ? alpha / Math.Sqrt(rank) : alpha / rank;
        _base = baseLayer;
        lora_A = new LoraFactor(rank, inFeatures, device);
        lora_B = new LoraFactor(outFeatures, rank, device);
        register_module("lora_A", lora_A);
        register_module("lora_B", lora_B);
        if (baseLayer is not null)
        {
            var remover = baseLayer.register_forward_hook((_, input, output) => AddDelta(input, output));
            _removeHook = remover.remove;
        }
    }

    /// <summary>Components are registered explicitly under PEFT's names.</summary>
    protected override void RegisterComponents() { }

    /// <summary>The adapted module's path in the base model's state dict (e.g. <c>language_model.model.layers.0.mlp.up_proj</c>).</summary>
    public string Path { get; }

    /// <summary>The base layer's input features.</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output features.</summary>
    public long OutFeatures { get; }

    /// <summary>The rank r.</summary>
    public int Rank { get; }

    /// <summary>lora_alpha.</summary>
    public double Alpha { get; }

    /// <summary>The input dropout probability in training mode.</summary>
    public double DropoutProbability { get; }

    /// <summary>The scale s: alpha/r, or alpha/sqrt(r) with rank-stabilised scaling.</summary>
    public double Scaling { get; }

    /// <summary><c>lora_A.weight</c> [r, in].</summary>
    public Parameter WeightA => lora_A.Weight;

    /// <summary><c>lora_B.weight</c> [out, r].</summary>
    public Parameter WeightB => lora_B.Weight;

    /// <summary>The base layer, or null for a detached instance.</summary>
    public Linear? BaseLayer => _base;

    /// <summary>Whether the delta is folded into the base weight (the hook then adds nothing).</summary>
    public bool IsMerged => _baseWeightBeforeMerge is not null;

    /// <summary>Whether the adapter adds its delta in the forward pass (default true); off gives the base model's outputs.
    /// A working copy follows the switch of the adapter it stands in for.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The working copy that computes this adapter's delta in the base layer's forward (see
    /// <see cref="LoraAdapterSet.BindWorkingCopy"/>), or null when this adapter computes it itself.</summary>
    public LoraLinear? WorkingCopy => _standIn;

    /// <summary><c>scale·B·A</c> [out, in] in the adapters' dtype (PEFT's <c>get_delta_weight</c> with fan_in_fan_out false).</summary>
    /// <param name="weightsFrom">Another adapter of the same shapes whose A and B to use (e.g. the EMA copy); null: these.</param>
    /// <returns>A new tensor; the caller disposes it.</returns>
    public Tensor DeltaWeight(LoraLinear? weightsFrom = null)
    {
        LoraLinear source = weightsFrom ?? this;
        if (source.Rank != Rank || source.InFeatures != InFeatures || source.OutFeatures != OutFeatures)
            throw new LoraException($"{Path}: the adapter to take weights from is [{source.OutFeatures}x{source.Rank}]·[{source.Rank}x{source.InFeatures}], this one [{OutFeatures}x{Rank}]·[{Rank}x{InFeatures}].");
        using var noGrad = no_grad();
        using Tensor product = source.WeightB.matmul(source.WeightA);
        return product.mul(Scaling);
    }

    /// <summary>The base weight with the delta folded in: <c>W + scale·B·A</c> computed and returned in
    /// <paramref name="dtype"/>, by default the base weight's (what <see cref="Merge"/> writes).</summary>
    /// <param name="weightsFrom">Adapter weights to fold in instead of these (same shapes); null: these.</param>
    /// <param name="dtype">The result's dtype; float32 over a bf16 base keeps the delta unrounded. Null: the base weight's.</param>
    /// <returns>A new tensor; the caller disposes it.</returns>
    public Tensor MergedWeight(LoraLinear? weightsFrom = null, ScalarType? dtype = null)
    {
        Linear layer = RequireBase();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor weight = _baseWeightBeforeMerge ?? layer.weight!;
        ScalarType type = dtype ?? weight.dtype;
        Tensor merged = weight.detach().to(type, copy: true);
        merged.add_(DeltaWeight(weightsFrom).to(type));
        return merged.MoveToOuterDisposeScope();
    }

    /// <summary>Folds the delta into the base weight (<c>W += scale·B·A</c>), keeping a copy of W so that
    /// <see cref="Unmerge"/> restores it bit for bit. No-op when merged.</summary>
    public void Merge()
    {
        if (IsMerged) return;
        Linear layer = RequireBase();
        using var noGrad = no_grad();
        Tensor merged = MergedWeight();
        _baseWeightBeforeMerge = layer.weight!.detach().clone();
        using (merged) layer.weight!.copy_(merged);
    }

    /// <summary>Restores the base weight saved by <see cref="Merge"/> (exactly). No-op when not merged.</summary>
    public void Unmerge()
    {
        if (_baseWeightBeforeMerge is not { } original) return;
        using var noGrad = no_grad();
        RequireBase().weight!.copy_(original);
        original.Dispose();
        _baseWeightBeforeMerge = null;
    }

    /// <summary>Unmerges and removes the hook: the base layer is as it was before the adapter was attached. On an
    /// attached adapter this also detaches its working copy; on a working copy it hands the forward back to the
    /// adapter it stood in for.</summary>
    public void DetachFromBase()
    {
        _standIn?.DetachFromBase();
        Unmerge();
        _removeHook?.Invoke();
        _removeHook = null;
        if (_standsInFor is { } attached) attached._standIn = null;
        _standsInFor = null;
    }

    /// <summary>Hooks this detached adapter into <paramref name="attached"/>'s base layer in its place: from now on
    /// this one's weights (in this one's dtype) give the delta and <paramref name="attached"/>'s hook adds nothing, until
    /// this one is detached or disposed.</summary>
    internal void StandInFor(LoraLinear attached)
    {
        Linear layer = attached._base ?? throw new LoraException($"{attached.Path}: a working copy stands in for an attached adapter, and this one is detached.");
        if (_base is not null || _removeHook is not null)
            throw new LoraException($"{Path}: only a detached adapter (CreateDetachedCopy) can be bound as a working copy.");
        if (attached._standIn is not null)
            throw new LoraException($"{attached.Path} already has a working copy; dispose it (or detach it) first.");
        if (attached.Path != Path || attached.Rank != Rank || attached.InFeatures != InFeatures || attached.OutFeatures != OutFeatures)
            throw new LoraException($"The working copy's adapter {Path} [{OutFeatures}x{Rank}]·[{Rank}x{InFeatures}] does not match {attached.Path} [{attached.OutFeatures}x{attached.Rank}]·[{attached.Rank}x{attached.InFeatures}].");
        var remover = layer.register_forward_hook((_, input, output) => AddDelta(input, output));
        _removeHook = remover.remove;
        _standsInFor = attached;
        attached._standIn = this;
    }

    /// <summary>Makes the forward use <paramref name="source"/>'s A and B (null: the hooked adapter's own).</summary>
    internal void ComputeWith(LoraLinear? source)
    {
        if (source is not null && (source.Path != Path || source.Rank != Rank || source.InFeatures != InFeatures || source.OutFeatures != OutFeatures))
            throw new LoraException($"{Path}: the adapter to compute with is {source.Path} [{source.OutFeatures}x{source.Rank}]·[{source.Rank}x{source.InFeatures}], this one [{OutFeatures}x{Rank}]·[{Rank}x{InFeatures}].");
        _weightsFrom = source;
    }

    private Tensor AddDelta(Tensor input, Tensor output)
    {
        LoraLinear owner = _standsInFor ?? this; // a working copy obeys the attached adapter's switches
        if (_standIn is not null || !Enabled || !owner.Enabled || owner.IsMerged || _removeHook is null) return output;
        LoraLinear weights = owner._weightsFrom ?? this;
        using var scope = NewDisposeScope();
        Tensor x = input.to(weights.lora_A.Weight.dtype);
        // Dropout in training mode only, of the adapter and of the base layer (PEFT's dropout sits in the model's tree,
        // so the model's eval() turns it off; here the adapters are outside it).
        if (DropoutProbability > 0 && training && (owner._base?.training ?? true)) x = nn.functional.dropout(x, DropoutProbability, training: true);
        Tensor delta = weights.lora_B.forward(weights.lora_A.forward(x)).mul(Scaling);
        return output.add(delta).to(output.dtype).MoveToOuterDisposeScope();
    }

    private Linear RequireBase() =>
        _base ?? throw new InvalidOperationException($"{Path}: this adapter is detached (an EMA or loaded copy) and has no base layer to merge into.");

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DetachFromBase(); // also hands a working copy's place back, or detaches this one's working copy
            _baseWeightBeforeMerge?.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>One factor of an adapter: a bias-free linear map whose only state is <c>weight</c> [out, in], created as
/// zeros without drawing from any generator (A is drawn afterwards from the adapter set's own generator).</summary>
internal sealed class LoraFactor : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public LoraFactor(long outFeatures, long inFeatures, Device device) : base(nameof(LoraFactor))
    {
        weight = new Parameter(zeros(outFeatures, inFeatures, ScalarType.Float32, device));
        register_parameter("weight", weight);
    }

    public Parameter Weight => weight;

    protected override void RegisterComponents() { }

    public override Tensor forward(Tensor input) => nn.functional.linear(input, weight);
}
