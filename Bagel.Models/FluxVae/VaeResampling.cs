using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.FluxVae;

/// <summary>The reference's <c>Downsample</c>: zero-pad right and bottom by one, then a 3×3 stride-2 <c>conv</c>
/// (torch convolutions cannot pad asymmetrically). Halves height and width.</summary>
public sealed class VaeDownsample : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d _conv;

    /// <summary>Creates the block.</summary>
    /// <param name="channels">Width (in and out).</param>
    public VaeDownsample(long channels) : base(nameof(VaeDownsample))
    {
        _conv = nn.Conv2d(channels, channels, kernel_size: 3, stride: 2, padding: 0L);
        register_module("conv", _conv);
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        // (left, right, top, bottom) = (0, 1, 0, 1), as in the reference.
        using Tensor padded = nn.functional.pad(x, (0L, 1L, 0L, 1L), PaddingModes.Constant, 0.0);
        return VaeLayers.Conv(_conv, padded, stride: 2);
    }
}

/// <summary>The reference's <c>Upsample</c>: nearest-neighbour ×2, then a 3×3 <c>conv</c> (padding 1).</summary>
public sealed class VaeUpsample : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d _conv;

    /// <summary>Creates the block.</summary>
    /// <param name="channels">Width (in and out).</param>
    public VaeUpsample(long channels) : base(nameof(VaeUpsample))
    {
        _conv = VaeLayers.Conv3x3(channels, channels);
        register_module("conv", _conv);
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using Tensor upsampled = nn.functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
        return VaeLayers.Conv(_conv, upsampled);
    }
}
