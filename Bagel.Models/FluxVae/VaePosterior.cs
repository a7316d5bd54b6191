using Bagel.Core.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.FluxVae;

/// <summary>
/// The reference's <c>DiagonalGaussian</c> with <c>sample=True</c> (<see cref="Sample"/>; <see cref="Mean"/> is <c>sample=False</c>), the posterior BAGEL trains with: the moments split
/// on the channel axis into mean (first half) and log-variance (second half), and the latent is the <b>sampled</b>
/// <c>mean + exp(0.5·logvar)·n</c>, n ~ N(0, 1) drawn like the mean (its dtype and device) through
/// <see cref="IRandomSource"/>. The sum is formed in float32 (the reference's autocast keeps exp and z in fp32).
/// </summary>
public static class VaePosterior
{
    /// <summary>Draws a latent from the posterior described by <paramref name="moments"/>.</summary>
    /// <param name="moments">[B, 2·z, h, w] encoder output.</param>
    /// <param name="random">The source of n (one standard normal tensor shaped like the mean).</param>
    /// <returns>The unscaled latent [B, z, h, w], float32.</returns>
    /// <exception cref="FluxVaeException">The moments are not 4-D with an even channel count.</exception>
    public static Tensor Sample(Tensor moments, IRandomSource random)
    {
        ArgumentNullException.ThrowIfNull(moments);
        ArgumentNullException.ThrowIfNull(random);
        CheckMoments(moments);
        using var scope = NewDisposeScope();
        Tensor[] halves = moments.chunk(2, dim: 1);
        Tensor mean = halves[0], logvar = halves[1];
        Tensor noise = random.NextStandardNormalTensor(mean.shape, mean.dtype, mean.device);
        Tensor std = logvar.to(ScalarType.Float32).mul(0.5).exp();
        return mean.to(ScalarType.Float32).add(std.mul(noise.to(ScalarType.Float32))).MoveToOuterDisposeScope();
    }

    /// <summary>The posterior's mean, the reference's <c>DiagonalGaussian</c> with <c>sample=False</c>: the first half of
    /// the moments' channels, in float32.</summary>
    /// <param name="moments">[B, 2·z, h, w] encoder output.</param>
    /// <returns>The unscaled latent mean [B, z, h, w], float32.</returns>
    /// <exception cref="FluxVaeException">The moments are not 4-D with an even channel count.</exception>
    public static Tensor Mean(Tensor moments)
    {
        ArgumentNullException.ThrowIfNull(moments);
        CheckMoments(moments);
        using var scope = NewDisposeScope();
        return moments.chunk(2, dim: 1)[0].to(ScalarType.Float32).contiguous().MoveToOuterDisposeScope();
    }

    private static void CheckMoments(Tensor moments)
    {
        if (moments.dim() != 4 || moments.shape[1] % 2 != 0)
            throw new FluxVaeException(
                $"VAE posterior moments must be [B, 2·z, h, w] with an even channel count; got [{string.Join(", ", moments.shape)}].");
    }
}
