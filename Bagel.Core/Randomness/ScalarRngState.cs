namespace Bagel.Core.Randomness;

/// <summary>
/// The saved state of a scalar generator: the algorithm name and its state words. Serializes to a few dozen bytes of
/// JSON, e.g. <c>{"algorithm":"xoshiro256**","words":[...]}</c>.
/// </summary>
/// <param name="Algorithm">The generator, <see cref="Xoshiro256StarStarAlgorithm"/>.</param>
/// <param name="Words">The state words (4 for xoshiro256**).</param>
public sealed record ScalarRngState(string Algorithm, ulong[] Words)
{
    /// <summary>The name recorded for <see cref="Xoshiro256StarStar"/>.</summary>
    public const string Xoshiro256StarStarAlgorithm = "xoshiro256**";

    /// <inheritdoc />
    public bool Equals(ScalarRngState? other) =>
        other is not null && Algorithm == other.Algorithm && Words.AsSpan().SequenceEqual(other.Words);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Algorithm);
        foreach (ulong word in Words) hash.Add(word);
        return hash.ToHashCode();
    }
}
