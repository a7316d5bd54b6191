using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Randomness;

/// <summary>
/// One draw the reference made, recorded for <see cref="ReplayRandomSource"/>. Create with <see cref="Uniform"/>,
/// <see cref="Integer"/>, <see cref="StandardNormal"/> or <see cref="FromTensor"/>. A tensor draw borrows its tensor:
/// the caller keeps ownership and must keep it alive while replaying.
/// </summary>
public sealed class RecordedDraw
{
    private RecordedDraw(RandomDrawKind kind, double real, long integer, Tensor? tensor)
    {
        Kind = kind;
        Real = real;
        IntegerValue = integer;
        Tensor = tensor;
    }

    /// <summary>The kind of draw.</summary>
    public RandomDrawKind Kind { get; }

    /// <summary>The value of a <see cref="RandomDrawKind.Uniform"/> or <see cref="RandomDrawKind.StandardNormal"/> draw.</summary>
    public double Real { get; }

    /// <summary>The value of an <see cref="RandomDrawKind.Integer"/> draw.</summary>
    public long IntegerValue { get; }

    /// <summary>The tensor of a <see cref="RandomDrawKind.StandardNormalTensor"/> draw (borrowed).</summary>
    public Tensor? Tensor { get; }

    /// <summary>A recorded <c>random.random()</c> result.</summary>
    /// <param name="value">The value, in [0, 1).</param>
    /// <returns>The draw.</returns>
    public static RecordedDraw Uniform(double value)
    {
        if (!(value >= 0.0 && value < 1.0))
            throw new ArgumentOutOfRangeException(nameof(value), value, "A uniform draw lies in [0, 1).");
        return new(RandomDrawKind.Uniform, value, 0, null);
    }

    /// <summary>A recorded integer result (the chosen value, or the chosen index for <c>random.choice(list)</c>).</summary>
    /// <param name="value">The value.</param>
    /// <returns>The draw.</returns>
    public static RecordedDraw Integer(long value) => new(RandomDrawKind.Integer, 0, value, null);

    /// <summary>A recorded <c>np.random.randn()</c> result.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The draw.</returns>
    public static RecordedDraw StandardNormal(double value) => new(RandomDrawKind.StandardNormal, value, 0, null);

    /// <summary>A recorded <c>torch.randn</c> / <c>randn_like</c> result.</summary>
    /// <param name="tensor">The recorded tensor (borrowed, not copied).</param>
    /// <returns>The draw.</returns>
    public static RecordedDraw FromTensor(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return new(RandomDrawKind.StandardNormalTensor, 0, 0, tensor);
    }

    /// <summary>A short description for error messages, e.g. <c>Uniform 0.25</c> or <c>StandardNormalTensor [2, 64]</c>.</summary>
    /// <returns>The description.</returns>
    public override string ToString() => Kind switch
    {
        RandomDrawKind.Uniform or RandomDrawKind.StandardNormal => $"{Kind} {Real.ToString("R", CultureInfo.InvariantCulture)}",
        RandomDrawKind.Integer => $"{Kind} {IntegerValue.ToString(CultureInfo.InvariantCulture)}",
        _ => $"{Kind} [{string.Join(", ", Tensor!.shape)}]",
    };
}
