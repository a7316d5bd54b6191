using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Randomness;

/// <summary>
/// The random seam: every random draw of the data packer and the model goes through one of these methods, so tests
/// can replay the reference's recorded draws (<see cref="ReplayRandomSource"/>) and training uses seeded, resumable
/// streams (<see cref="SeededRandomSource"/>). Implementations are not thread-safe: one source per stream.
/// Shuffles and choices are extensions built on <see cref="NextInt"/> (<see cref="RandomSourceExtensions"/>).
/// </summary>
public interface IRandomSource
{
    /// <summary>A uniform double in [0, 1). Reference: Python <c>random.random()</c> (group sampling, conditioning
    /// dropout, the edit chain's coin flip).</summary>
    /// <returns>A value in [0, 1).</returns>
    double NextUniform();

    /// <summary>A uniform integer in [<paramref name="minInclusive"/>, <paramref name="maxExclusive"/>). Reference:
    /// <c>random.choice(range(a, b))</c> → <c>NextInt(a, b)</c>; <c>random.randint(a, b)</c> → <c>NextInt(a, b + 1)</c>;
    /// <c>random.choice(list)</c> → the index <c>NextInt(0, len)</c>. A recording holds the value the reference got.</summary>
    /// <param name="minInclusive">The smallest value.</param>
    /// <param name="maxExclusive">One past the largest value.</param>
    /// <returns>The drawn value.</returns>
    long NextInt(long minInclusive, long maxExclusive);

    /// <summary>A standard normal scalar. Reference: NumPy <c>np.random.randn()</c> (the raw timestep of each noisy
    /// image, drawn in float64 and stored as float32).</summary>
    /// <returns>A value from N(0, 1).</returns>
    double NextStandardNormal();

    /// <summary>A new tensor of standard normal values; the caller owns it. Reference: <c>torch.randn_like(x0)</c>
    /// (flow-matching noise ε, fp32) and <c>torch.randn_like(mean)</c> (VAE posterior noise, bf16 there).</summary>
    /// <param name="shape">The shape.</param>
    /// <param name="dtype">The dtype of the result.</param>
    /// <param name="device">The device of the result.</param>
    /// <returns>The drawn tensor.</returns>
    Tensor NextStandardNormalTensor(ReadOnlySpan<long> shape, ScalarType dtype, Device device);
}
