using Microsoft.Extensions.Logging;

namespace Bagel.Core.Randomness;

/// <summary>
/// Every random stream of one rank (or one data worker) from one user seed: a <see cref="SeededRandomSource"/> per
/// purpose, created on first use from <see cref="SeedDerivation.Derive"/>, plus the seeding of torch's global
/// generator. <see cref="GetStates"/> / <see cref="SetStates"/> save and restore all of them by purpose name, in the
/// shape the data status stores (<c>RankDataStatus.RngStates</c> / <c>WorkerRngStates</c>). Not thread-safe.
/// </summary>
public sealed class RandomStreams : IDisposable
{
    private readonly Dictionary<string, SeededRandomSource> _sources = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>Creates the streams of <paramref name="rank"/> / <paramref name="worker"/> for <paramref name="seed"/>.</summary>
    /// <param name="seed">The user's seed.</param>
    /// <param name="rank">The rank (default 0).</param>
    /// <param name="worker">The data worker id (default 0; use 0 for rank-level streams).</param>
    public RandomStreams(long seed, int rank = 0, int worker = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfNegative(worker);
        Seed = seed;
        Rank = rank;
        Worker = worker;
    }

    /// <summary>The user's seed.</summary>
    public long Seed { get; }

    /// <summary>The rank the streams belong to.</summary>
    public int Rank { get; }

    /// <summary>The data worker the streams belong to.</summary>
    public int Worker { get; }

    /// <summary>The stream for <paramref name="purpose"/> (created on first use).</summary>
    /// <param name="purpose">A purpose name, e.g. one of <see cref="RandomPurposes"/>.</param>
    /// <returns>The source; owned by this object.</returns>
    public SeededRandomSource For(string purpose)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentException.ThrowIfNullOrEmpty(purpose);
        if (!_sources.TryGetValue(purpose, out SeededRandomSource? source))
        {
            source = SeededRandomSource.ForPurpose(Seed, purpose, Rank, Worker);
            _sources.Add(purpose, source);
        }
        return source;
    }

    /// <summary>Seeds torch's global generator with <see cref="SeedDerivation.ReferenceRankSeed"/> (as the
    /// reference does for parameter initialisation).</summary>
    /// <param name="worldSize">The number of ranks.</param>
    /// <param name="logger">Optional logger.</param>
    public void SeedTorchGlobal(int worldSize, ILogger? logger = null) =>
        TorchGlobalRandom.Seed(SeedDerivation.ReferenceRankSeed(Seed, worldSize, Rank), Rank, logger);

    /// <summary>The state of every stream used so far, by purpose name.</summary>
    /// <returns>A new dictionary.</returns>
    public IReadOnlyDictionary<string, RandomSourceState> GetStates()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _sources.ToDictionary(pair => pair.Key, pair => pair.Value.GetState(), StringComparer.Ordinal);
    }

    /// <summary>Restores saved states; streams absent from <paramref name="states"/> start afresh from their seed.</summary>
    /// <param name="states">States from <see cref="GetStates"/> of the same seed, rank and worker.</param>
    /// <exception cref="ArgumentException">A state belongs to another seed, rank, worker or purpose.</exception>
    public void SetStates(IReadOnlyDictionary<string, RandomSourceState> states)
    {
        ArgumentNullException.ThrowIfNull(states);
        ObjectDisposedException.ThrowIf(_disposed, this);
        foreach (SeededRandomSource source in _sources.Values) source.Dispose();
        _sources.Clear();
        foreach ((string purpose, RandomSourceState state) in states)
        {
            ulong expected = SeedDerivation.Derive(Seed, purpose, Rank, Worker);
            if (state.Seed != expected)
                throw new ArgumentException(
                    $"The saved random state for '{purpose}' has stream seed {state.Seed}, but seed {Seed}, rank {Rank}, worker {Worker} derive {expected}: " +
                    "it was saved with another seed, rank or worker.", nameof(states));
            For(purpose).SetState(state);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (SeededRandomSource source in _sources.Values) source.Dispose();
        _sources.Clear();
    }
}
