using System.Text;

namespace Bagel.Core.Randomness;

/// <summary>
/// Derives every random stream from one user seed: stream seed = mix(seed, stable hash of the purpose name, rank,
/// worker). Each concern (group sampling, conditioning dropout, timesteps, noise, ...) gets its own stream, so
/// adding a draw to one concern never shifts another's sequence, and the derivation does not depend on the .NET
/// version or process (unlike <see cref="string.GetHashCode()"/>).
/// </summary>
public static class SeedDerivation
{
    private const ulong FnvOffsetBasis = 0xCBF29CE484222325UL; // FNV-1a 64-bit parameters (stable, well known)
    private const ulong FnvPrime = 0x100000001B3UL;

    /// <summary>The seed of the stream for <paramref name="purpose"/> on <paramref name="rank"/> / <paramref name="worker"/>.</summary>
    /// <param name="seed">The user's seed.</param>
    /// <param name="purpose">A stable purpose name, e.g. one of <see cref="RandomPurposes"/>.</param>
    /// <param name="rank">The distributed rank (0 on a single process).</param>
    /// <param name="worker">The data worker id (0 when the stream is not per worker).</param>
    /// <returns>A well-mixed 64-bit stream seed.</returns>
    public static ulong Derive(long seed, string purpose, int rank = 0, int worker = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(purpose);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfNegative(worker);
        ulong x = SplitMix64.Mix((ulong)seed + 0x9E3779B97F4A7C15UL);
        x = SplitMix64.Mix(x ^ StableHash(purpose));
        x = SplitMix64.Mix(x ^ ((ulong)(uint)rank << 32 | (uint)worker));
        return x;
    }

    /// <summary>
    /// The reference's per-rank seed, <c>global_seed · world_size + rank</c> (pretrain_unified_navit.py, passed to
    /// <c>transformers.set_seed</c> for Python, NumPy and torch). Use it for torch's global generator (parameter
    /// initialisation) when matching the reference.
    /// </summary>
    /// <param name="globalSeed">The reference's <c>global_seed</c> (default 4396).</param>
    /// <param name="worldSize">The number of ranks.</param>
    /// <param name="rank">This rank.</param>
    /// <returns>The rank's seed.</returns>
    public static long ReferenceRankSeed(long globalSeed, int worldSize, int rank)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, worldSize);
        return checked(globalSeed * worldSize + rank);
    }

    /// <summary>FNV-1a 64 of the UTF-8 bytes of <paramref name="text"/>: stable across processes and platforms.</summary>
    /// <param name="text">The text to hash.</param>
    /// <returns>The hash.</returns>
    public static ulong StableHash(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        ulong hash = FnvOffsetBasis;
        foreach (byte b in Encoding.UTF8.GetBytes(text))
        {
            hash ^= b;
            hash *= FnvPrime;
        }
        return hash;
    }
}
