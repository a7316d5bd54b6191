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
/// EMA copy of the adapters.
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

    /// <summary>Whether the adapter adds its delta in the forward pass (default true); off gives the base model's outputs.</summary>
    public bool Enabled { get; set; } = true;

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

    /// <summary>The base weight with the delta folded in, in the base weight's dtype (what <see cref="Merge"/> writes).</summary>
    /// <param name="weightsFrom">Adapter weights to fold in instead of these (same shapes); null: these.</param>
    /// <returns>A new tensor; the caller disposes it.</returns>
    public Tensor MergedWeight(LoraLinear? weightsFrom = null)
    {
        Linear layer = RequireBase();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor weight = _baseWeightBeforeMerge ?? layer.weight!;
        Tensor merged = weight.detach().clone();
        merged.add_(DeltaWeight(weightsFrom).to(weight.dtype));
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

    /// <summary>Unmerges and removes the hook: the base layer is as it was before the adapter was attached.</summary>
    public void DetachFromBase()
    {
        Unmerge();
        _removeHook?.Invoke();
        _removeHook = null;
    }

    private Tensor AddDelta(Tensor input, Tensor output)
    {
        if (!Enabled || IsMerged || _removeHook is null) return output;
        using var scope = NewDisposeScope();
        Tensor x = input.to(lora_A.Weight.dtype);
        if (DropoutProbability > 0 && training) x = nn.functional.dropout(x, DropoutProbability, training: true);
        Tensor delta = lora_B.forward(lora_A.forward(x)).mul(Scaling);
        return output.add(delta).to(output.dtype).MoveToOuterDisposeScope();
    }

    private Linear RequireBase() =>
        _base ?? throw new InvalidOperationException($"{Path}: this adapter is detached (an EMA or loaded copy) and has no base layer to merge into.");

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DetachFromBase();
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
