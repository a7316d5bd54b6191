namespace Bagel.Core.Randomness;

/// <summary>
/// A <see cref="ReplayRandomSource"/> was asked for a draw the recording does not hold at that point: the code under
/// test diverged from the reference (another kind, an out-of-range value, another shape) or drew more than was recorded.
/// </summary>
public sealed class RandomReplayException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="drawIndex">The 0-based index of the failing draw.</param>
    /// <param name="requested">The kind the code asked for.</param>
    /// <param name="recorded">The kind the recording holds there, or null when it is exhausted.</param>
    /// <param name="message">The full explanation.</param>
    public RandomReplayException(int drawIndex, RandomDrawKind requested, RandomDrawKind? recorded, string message)
        : base(message)
    {
        DrawIndex = drawIndex;
        Requested = requested;
        Recorded = recorded;
    }

    /// <summary>The 0-based index of the failing draw.</summary>
    public int DrawIndex { get; }

    /// <summary>The kind of draw the code asked for.</summary>
    public RandomDrawKind Requested { get; }

    /// <summary>The kind the recording holds at <see cref="DrawIndex"/>; null when the recording is exhausted.</summary>
    public RandomDrawKind? Recorded { get; }
}
