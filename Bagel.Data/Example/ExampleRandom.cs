namespace Bagel.Data.Example;

/// <summary>
/// A small portable generator (SplitMix64) keyed by (seed, stream, index), so every picture's content depends only on
/// its own key: files come out identical whatever the rendering order, the parallelism or the .NET version.
/// </summary>
internal struct ExampleRandom
{
    private ulong _state;

    public ExampleRandom(int seed, ExampleStream stream, long index)
    {
        _state = Mix((ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)stream << 48) ^ (ulong)index);
    }

    /// <summary>A uniform integer in [0, n).</summary>
    public int Below(int n)
    {
        if (n <= 1) return 0;
        // Multiply-shift on the top 32 bits; the bias is below 2^-32 per draw, irrelevant here.
        return (int)(((NextULong() >> 32) * (ulong)n) >> 32);
    }

    /// <summary>A uniform integer in [min, max].</summary>
    public int Between(int min, int max) => min + Below(max - min + 1);

    /// <summary>A uniform double in [0, 1).</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    /// <summary>One of the items.</summary>
    public T Pick<T>(IReadOnlyList<T> items) => items[Below(items.Count)];

    public ulong NextULong()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>Independent random streams, so changing one kind's count leaves the others' content unchanged.</summary>
internal enum ExampleStream
{
    T2I = 1,
    Edit = 2,
    Vlm = 3,
    Noise = 4,
}
