using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.FluxVae;

/// <summary>
/// The reference's <c>ResnetBlock</c>: norm1 → swish → conv1 (3×3) → norm2 → swish → conv2 (3×3), added to the input,
/// which passes through a 1×1 <c>nin_shortcut</c> when the widths differ. State-dict names: <c>norm1</c>, <c>conv1</c>,
/// <c>norm2</c>, <c>conv2</c>, <c>nin_shortcut</c>.
/// </summary>
public sealed class VaeResnetBlock : nn.Module<Tensor, Tensor>
{
    private readonly GroupNorm _norm1;
    private readonly Conv2d _conv1;
    private readonly GroupNorm _norm2;
    private readonly Conv2d _conv2;
    private readonly Conv2d? _ninShortcut;

    /// <summary>Creates the block.</summary>
    /// <param name="inChannels">Input width.</param>
    /// <param name="outChannels">Output width.</param>
    public VaeResnetBlock(long inChannels, long outChannels) : base(nameof(VaeResnetBlock))
    {
        _norm1 = VaeLayers.Norm(inChannels);
        _conv1 = VaeLayers.Conv3x3(inChannels, outChannels);
        _norm2 = VaeLayers.Norm(outChannels);
        _conv2 = VaeLayers.Conv3x3(outChannels, outChannels);
        register_module("norm1", _norm1);
        register_module("conv1", _conv1);
        register_module("norm2", _norm2);
        register_module("conv2", _conv2);
        if (inChannels != outChannels)
        {
            _ninShortcut = VaeLayers.Conv1x1(inChannels, outChannels);
            register_module("nin_shortcut", _ninShortcut);
        }
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor h = VaeLayers.Conv(_conv1, VaeLayers.Swish(VaeLayers.Norm(_norm1, x)));
        h = VaeLayers.Conv(_conv2, VaeLayers.Swish(VaeLayers.Norm(_norm2, h)));
        Tensor shortcut = _ninShortcut is null ? x : VaeLayers.Conv(_ninShortcut, x);
        return shortcut.add(h).MoveToOuterDisposeScope();
    }
}
