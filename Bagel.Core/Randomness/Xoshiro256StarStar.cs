using System.Numerics;

namespace Bagel.Core.Randomness;

/// <summary>
/// The xoshiro256** scalar generator (Blackman and Vigna, 2018): 256 bits of state, period 2^256 − 1, fast, and,
/// unlike <see cref="System.Random"/>, with a state that can be read and restored exactly (<see cref="GetState"/>,
/// <see cref="SetState"/>), which exact resume needs. Seeding expands a 64-bit seed with SplitMix64, as the authors
/// recommend. Not thread-safe: one instance per stream.
/// </summary>
public sealed class Xoshiro256StarStar
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Creates a generator whose state is SplitMix64's first four outputs from <paramref name="seed"/>.</summary>
    /// <param name="seed">Any 64-bit value.</param>
    public Xoshiro256StarStar(ulong seed)
    {
        ulong sm = seed;
        _s0 = SplitMix64.Next(ref sm);
        _s1 = SplitMix64.Next(ref sm);
        _s2 = SplitMix64.Next(ref sm);
        _s3 = SplitMix64.Next(ref sm);
    }

    /// <summary>Creates a generator that continues from a saved state.</summary>
    /// <param name="state">A state from <see cref="GetState"/>.</param>
    /// <exception cref="ArgumentException">The state is not a valid xoshiro256** state.</exception>
    public Xoshiro256StarStar(ScalarRngState state)
    {
        SetState(state);
    }

    /// <summary>The next 64 random bits.</summary>
    /// <returns>A uniformly distributed 64-bit value.</returns>
    public ulong NextUInt64()
    {
        ulong result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits (the same resolution as Python's <c>random.random()</c>).</summary>
    /// <returns>A value in [0, 1).</returns>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>An unbiased uniform integer in [<paramref name="minInclusive"/>, <paramref name="maxExclusive"/>)
    /// (Lemire's multiply-and-reject method).</summary>
    /// <param name="minInclusive">The smallest value.</param>
    /// <param name="maxExclusive">One past the largest value; must exceed <paramref name="minInclusive"/>.</param>
    /// <returns>The drawn value.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The range is empty.</exception>
    public long NextInt64(long minInclusive, long maxExclusive)
    {
        if (maxExclusive <= minInclusive)
            throw new ArgumentOutOfRangeException(nameof(maxExclusive), $"The range [{minInclusive}, {maxExclusive}) is empty.");
        ulong range = (ulong)(maxExclusive - minInclusive);
        ulong high = Math.BigMul(NextUInt64(), range, out ulong low);
        if (low < range)
        {
            ulong threshold = (0 - range) % range;
            while (low < threshold)
                high = Math.BigMul(NextUInt64(), range, out low);
        }
        return minInclusive + (long)high;
    }

    /// <summary>A standard normal draw (Box–Muller from two uniforms; the partner value is discarded so the state
    /// stays the 256-bit word array and nothing else).</summary>
    /// <returns>A value from N(0, 1).</returns>
    public double NextStandardNormal()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1]: keeps log finite
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>The full state, to save and later pass to <see cref="SetState"/>.</summary>
    /// <returns>A compact serializable copy of the state.</returns>
    public ScalarRngState GetState() => new(ScalarRngState.Xoshiro256StarStarAlgorithm, [_s0, _s1, _s2, _s3]);

    /// <summary>Restores a state from <see cref="GetState"/>; the next draws continue that sequence exactly.</summary>
    /// <param name="state">The saved state.</param>
    /// <exception cref="ArgumentException">The algorithm differs, the word count is not 4, or all words are zero.</exception>
    public void SetState(ScalarRngState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Algorithm != ScalarRngState.Xoshiro256StarStarAlgorithm)
            throw new ArgumentException($"The saved RNG state is for '{state.Algorithm}', not '{ScalarRngState.Xoshiro256StarStarAlgorithm}'.", nameof(state));
        if (state.Words is not { Length: 4 } words)
            throw new ArgumentException($"A {ScalarRngState.Xoshiro256StarStarAlgorithm} state has 4 words; the saved one has {state.Words?.Length ?? 0}.", nameof(state));
        if ((words[0] | words[1] | words[2] | words[3]) == 0)
            throw new ArgumentException($"An all-zero {ScalarRngState.Xoshiro256StarStarAlgorithm} state is invalid (the generator would output only zeros).", nameof(state));
        (_s0, _s1, _s2, _s3) = (words[0], words[1], words[2], words[3]);
    }
}
