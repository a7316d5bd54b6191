using Bagel.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Randomness;

/// <summary>
/// Draws from torch's global CPU generator, as the reference's model does (<c>torch.randn_like</c> for the VAE posterior
/// noise and the flow-matching ε). Its state is the global generator's, which trainer checkpoints save and restore
/// (<see cref="TorchGlobalRandom"/>), so resumed runs draw the same noise. Tensors are drawn in float32 on the CPU and
/// then cast and moved, so a seed gives the same noise on every device and dtype.
/// </summary>
public sealed class TorchGlobalRandomSource : IRandomSource
{
    /// <summary>The shared instance.</summary>
    public static TorchGlobalRandomSource Instance { get; } = new();

    /// <inheritdoc />
    public double NextUniform()
    {
        TorchRuntime.EnsureLoaded();
        using var draw = torch.rand(1, ScalarType.Float64);
        return draw.item<double>();
    }

    /// <inheritdoc />
    public long NextInt(long minInclusive, long maxExclusive)
    {
        if (maxExclusive <= minInclusive) throw new ArgumentOutOfRangeException(nameof(maxExclusive), $"The range [{minInclusive}, {maxExclusive}) is empty.");
        TorchRuntime.EnsureLoaded();
        using var draw = torch.randint(minInclusive, maxExclusive, [1], ScalarType.Int64);
        return draw.item<long>();
    }

    /// <inheritdoc />
    public double NextStandardNormal()
    {
        TorchRuntime.EnsureLoaded();
        using var draw = torch.randn(1, ScalarType.Float64);
        return draw.item<double>();
    }

    /// <inheritdoc />
    public Tensor NextStandardNormalTensor(ReadOnlySpan<long> shape, ScalarType dtype, Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        TorchRuntime.EnsureLoaded();
        Tensor draw = torch.randn(shape, ScalarType.Float32, torch.CPU);
        if (dtype == ScalarType.Float32 && device.type == DeviceType.CPU) return draw;
        using (draw) return draw.to(dtype, device);
    }
}
