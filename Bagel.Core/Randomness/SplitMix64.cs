namespace Bagel.Core.Randomness;

/// <summary>SplitMix64 (Steele, Lea and Flood, 2014): expands seeds and mixes values into well-spread 64-bit words.</summary>
internal static class SplitMix64
{
    /// <summary>SplitMix64's increment, the 64-bit golden ratio.</summary>
    private const ulong GoldenGamma = 0x9E3779B97F4A7C15UL;

    /// <summary>Advances <paramref name="state"/> and returns the next output.</summary>
    public static ulong Next(ref ulong state)
    {
        state += GoldenGamma;
        return Mix(state);
    }

    /// <summary>SplitMix64's output function: a bijective mix of all 64 bits.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
