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

    [ThreadStatic] private static int t_autocastDepth;

    /// <summary>Whether this thread is inside <see cref="FluxAutoEncoder.EncodeUnderBf16Autocast"/>.</summary>
    internal static bool Bf16Autocast => t_autocastDepth > 0;

    /// <summary>Test seam: with false, GroupNorm under the bf16 autocast emulation runs in bf16 instead of float32 (the
    /// reference's float32 island removed), so a test can see what the island is worth.</summary>
    [ThreadStatic] internal static bool t_disableGroupNormIsland;

    internal static IDisposable EnterBf16Autocast()
    {
        t_autocastDepth++;
        return new AutocastScope();
    }

    private sealed class AutocastScope : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            t_autocastDepth--;
        }
    }

    /// <summary>A convolution as bf16 autocast runs it when <see cref="Bf16Autocast"/> is on (input, weight and bias cast
    /// to bf16, bf16 output; fp32 accumulation inside the kernel), else the module's own forward.</summary>
    public static Tensor Conv(Conv2d conv, Tensor x, long stride = 1)
    {
        if (!Bf16Autocast) return conv.forward(x);
        using var scope = torch.NewDisposeScope();
        Tensor weight = conv.weight!.to(ScalarType.BFloat16);
        Tensor? bias = conv.bias?.to(ScalarType.BFloat16);
        long padding = stride == 1 ? weight.shape[2] / 2 : 0; // 3×3 pad 1, 1×1 pad 0, the stride-2 downsample pads itself
        return nn.functional.conv2d(x.to(ScalarType.BFloat16), weight, bias, strides: [stride, stride], padding: [padding, padding])
            .MoveToOuterDisposeScope();
    }

    /// <summary>GroupNorm as bf16 autocast runs it when <see cref="Bf16Autocast"/> is on: an fp32 op (input upcast, fp32
    /// weights, fp32 output), else the module's own forward.</summary>
    public static Tensor Norm(GroupNorm norm, Tensor x)
    {
        if (!Bf16Autocast) return norm.forward(x);
        if (t_disableGroupNormIsland)
        {
            using var s = torch.NewDisposeScope();
            return nn.functional.group_norm(x.to(ScalarType.BFloat16), FluxVaeConfig.GroupNormGroups, norm.weight!.to(ScalarType.BFloat16),
                norm.bias!.to(ScalarType.BFloat16), FluxVaeConfig.GroupNormEpsilon).MoveToOuterDisposeScope();
        }
        using var scope = torch.NewDisposeScope();
        return nn.functional.group_norm(x.to(ScalarType.Float32), FluxVaeConfig.GroupNormGroups, norm.weight!.to(ScalarType.Float32),
            norm.bias!.to(ScalarType.Float32), FluxVaeConfig.GroupNormEpsilon).MoveToOuterDisposeScope();
    }

    /// <summary>The reference's <c>swish</c>: x·sigmoid(x), written as that product (not the fused SiLU) so reduced
    /// precision rounds the way the reference does.</summary>
    public static Tensor Swish(Tensor x)
    {
        using Tensor gate = x.sigmoid();
        return x.mul(gate);
    }
}

/// <summary>Test seam for the VAE's GroupNorm float32 island (see <see cref="VaeLayers.Norm(GroupNorm, Tensor)"/>).</summary>
internal static class VaeLayersSeam
{
    /// <summary>With true, GroupNorm under the bf16 autocast emulation runs in bf16 on this thread.</summary>
    internal static void DisableGroupNormIsland(bool disable) => VaeLayers.t_disableGroupNormIsland = disable;
}
