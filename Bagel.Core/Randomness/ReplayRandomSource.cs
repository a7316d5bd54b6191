using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Randomness;

/// <summary>
/// An <see cref="IRandomSource"/> that returns recorded draws in order, so a test can feed the reference's exact
/// random choices to our packer or model and compare outputs. Any mismatch (another kind, an integer outside the
/// requested range, a tensor of another shape, or running past the end) throws <see cref="RandomReplayException"/>
/// naming the draw index, the recorded draw and the requested one.
/// </summary>
public sealed class ReplayRandomSource : IRandomSource
{
    private readonly IReadOnlyList<RecordedDraw> _draws;

    /// <summary>Creates a replayer over <paramref name="draws"/> (tensor draws are borrowed, not copied).</summary>
    /// <param name="draws">The recorded draws, in the order the reference made them.</param>
    public ReplayRandomSource(IEnumerable<RecordedDraw> draws)
    {
        ArgumentNullException.ThrowIfNull(draws);
        _draws = [.. draws];
    }

    /// <summary>The index of the next draw (= the number of draws consumed so far).</summary>
    public int Position { get; private set; }

    /// <summary>The number of recorded draws not yet consumed.</summary>
    public int Remaining => _draws.Count - Position;

    /// <inheritdoc />
    public double NextUniform() => Take(RandomDrawKind.Uniform, "a uniform value").Real;

    /// <inheritdoc />
    public long NextInt(long minInclusive, long maxExclusive)
    {
        string what = $"an integer in [{minInclusive}, {maxExclusive})";
        int index = Position;
        RecordedDraw draw = Take(RandomDrawKind.Integer, what);
        if (draw.IntegerValue < minInclusive || draw.IntegerValue >= maxExclusive)
            throw new RandomReplayException(index, RandomDrawKind.Integer, RandomDrawKind.Integer,
                $"Replayed draw #{index} diverged: the recording holds {draw}, outside the requested range [{minInclusive}, {maxExclusive}).");
        return draw.IntegerValue;
    }

    /// <inheritdoc />
    public double NextStandardNormal() => Take(RandomDrawKind.StandardNormal, "a standard normal value").Real;

    /// <inheritdoc />
    public Tensor NextStandardNormalTensor(ReadOnlySpan<long> shape, ScalarType dtype, Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        string shapeText = "[" + string.Join(", ", shape.ToArray()) + "]";
        int index = Position;
        RecordedDraw draw = Take(RandomDrawKind.StandardNormalTensor, $"a standard normal tensor {shapeText}");
        Tensor recorded = draw.Tensor!;
        if (!recorded.shape.AsSpan().SequenceEqual(shape))
            throw new RandomReplayException(index, RandomDrawKind.StandardNormalTensor, RandomDrawKind.StandardNormalTensor,
                $"Replayed draw #{index} diverged: the recording holds {draw}, but the code asked for a standard normal tensor {shapeText}.");
        return recorded.to(dtype, device, copy: true);
    }

    /// <summary>Throws unless every recorded draw was consumed (a test's final check that nothing was skipped).</summary>
    /// <exception cref="RandomReplayException">Draws remain.</exception>
    public void EnsureFullyConsumed()
    {
        if (Remaining == 0) return;
        RecordedDraw next = _draws[Position];
        throw new RandomReplayException(Position, next.Kind, next.Kind,
            $"Replay ended early: {Remaining.ToString(CultureInfo.InvariantCulture)} of {_draws.Count.ToString(CultureInfo.InvariantCulture)} recorded draws were not consumed; the first unused one is #{Position} ({next}).");
    }

    private RecordedDraw Take(RandomDrawKind requested, string what)
    {
        int index = Position;
        if (index >= _draws.Count)
            throw new RandomReplayException(index, requested, null,
                $"Replayed draw #{index}: the recording is exhausted (it holds {_draws.Count} draws), but the code asked for {what} ({requested}).");
        RecordedDraw draw = _draws[index];
        if (draw.Kind != requested)
            throw new RandomReplayException(index, requested, draw.Kind,
                $"Replayed draw #{index} diverged: the recording holds {draw} ({draw.Kind}), but the code asked for {what} ({requested}).");
        Position = index + 1;
        return draw;
    }
}
