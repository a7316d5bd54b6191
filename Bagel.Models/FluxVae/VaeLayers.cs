using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.FluxVae;

/// <summary>Factories for the reference's GroupNorm and convolutions, so every block builds them the same way.</summary>
internal static class VaeLayers
{
    /// <summary><c>nn.GroupNorm(32, channels, eps=1e-6, affine=True)</c> with PyTorch's initial affine parameters
    /// (weight 1, bias 0).</summary>
    public static GroupNorm Norm(long channels)
    {
        GroupNorm norm = nn.GroupNorm(FluxVaeConfig.GroupNormGroups, channels, FluxVaeConfig.GroupNormEpsilon, affine: true);
        // TorchSharp 0.107's GroupNorm allocates its affine parameters with torch.empty and never initializes them
        // (a randomly built VAE then encodes garbage or NaN); PyTorch starts them at 1 and 0.
        using var noGrad = torch.no_grad();
        norm.weight.fill_(1.0);
        norm.bias!.zero_();
        return norm;
    }

    /// <summary>A 3×3 convolution with padding 1, stride 1 (<c>conv1</c>, <c>conv2</c>, <c>conv_in</c>, <c>conv_out</c>).</summary>
    public static Conv2d Conv3x3(long inChannels, long outChannels) =>
        nn.Conv2d(inChannels, outChannels, kernel_size: 3, stride: 1, padding: 1L);

    /// <summary>A 1×1 convolution (<c>nin_shortcut</c>, attention <c>q</c>/<c>k</c>/<c>v</c>/<c>proj_out</c>).</summary>
    public static Conv2d Conv1x1(long inChannels, long outChannels) =>
        nn.Conv2d(inChannels, outChannels, kernel_size: 1, stride: 1, padding: 0L);

    /// <summary>The reference's <c>swish</c>: x·sigmoid(x), written as that product (not the fused SiLU) so reduced
    /// precision rounds the way the reference does.</summary>
    public static Tensor Swish(Tensor x)
    {
        using Tensor gate = x.sigmoid();
        return x.mul(gate);
    }
}
