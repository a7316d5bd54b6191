namespace Bagel.Core.Randomness;

/// <summary>The kinds of draw the <see cref="IRandomSource"/> seam makes, each with its reference counterpart.</summary>
public enum RandomDrawKind
{
    /// <summary><see cref="IRandomSource.NextUniform"/> — Python <c>random.random()</c>.</summary>
    Uniform,

    /// <summary><see cref="IRandomSource.NextInt"/> — Python <c>random.choice</c> / <c>randint</c> / <c>randrange</c> / shuffle's <c>_randbelow</c>.</summary>
    Integer,

    /// <summary><see cref="IRandomSource.NextStandardNormal"/> — NumPy <c>np.random.randn()</c>.</summary>
    StandardNormal,

    /// <summary><see cref="IRandomSource.NextStandardNormalTensor"/> — <c>torch.randn</c> / <c>torch.randn_like</c>.</summary>
    StandardNormalTensor,
}
