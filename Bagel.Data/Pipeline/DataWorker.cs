using System.Threading.Channels;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;
using Bagel.Data.Diagnostics;
using Bagel.Data.Packing;
using Bagel.Data.Sources;
using Bagel.Data.Tokenization;

namespace Bagel.Data.Pipeline;

/// <summary>
/// A worker's state right after it built a batch: enough to rebuild exactly the batches that follow. Positions are
/// the last records its group iterators read (buffered samples are listed separately and re-read by position).
/// </summary>
/// <param name="LastRead">Group -> the last position read by that group's iterator.</param>
/// <param name="Buffer">The packer's buffered samples, oldest first, with their sample seeds.</param>
/// <param name="RngStates">Purpose -> the worker's random stream states.</param>
internal sealed record WorkerSnapshot(IReadOnlyDictionary<string, SourcePosition> LastRead, IReadOnlyList<SampleDataIndex> Buffer,
    IReadOnlyDictionary<string, RandomSourceState> RngStates);

/// <summary>A built batch and the worker's state after it.</summary>
internal sealed record WorkerBatch(PackedBatch Batch, WorkerSnapshot After);

/// <summary>
/// One data worker (the reference's DataLoader worker): reads its slice of every group, builds samples, packs them
/// with its own buffer and random streams, and writes each batch with a snapshot of its state to a bounded channel.
/// </summary>
internal sealed class DataWorker
{
    private readonly int _worker;
    private readonly IReadOnlyList<DataGroup> _groups;
    private readonly DataPipelineOptions _options;
    private readonly BagelSpecialTokenIds _tokens;
    private readonly DataSkipCounters _skips;
    private readonly WorkerSnapshot? _resume;
    private readonly WorkerSlice _slice;
    private readonly Dictionary<string, SourcePosition> _lastRead = new(StringComparer.Ordinal);

    public DataWorker(int worker, IReadOnlyList<DataGroup> groups, DataPipelineOptions options, BagelSpecialTokenIds tokens, DataSkipCounters skips, WorkerSnapshot? resume)
    {
        _worker = worker;
        _groups = groups;
        _options = options;
        _tokens = tokens;
        _skips = skips;
        _resume = resume;
        _slice = new WorkerSlice(options.Rank, options.WorldSize, worker, options.NumWorkers);
    }

    /// <summary>The unit shuffle's generator: a fresh stream from the data seed, the same on every rank and worker.</summary>
    private Func<int, int> NewShuffle()
    {
        var random = SeededRandomSource.ForPurpose(_options.DataSeed, "data.unit_shuffle");
        return n => (int)random.NextInt(0, n);
    }

    public async Task RunAsync(ChannelWriter<WorkerBatch> output, CancellationToken cancellationToken)
    {
        using var streams = new RandomStreams(_options.DataSeed, _options.Rank, _worker);
        if (_resume is not null) streams.SetStates(_resume.RngStates);
        SeededRandomSource parsing = streams.For(RandomPurposes.SampleParsing);

        var iterators = new Dictionary<string, IAsyncEnumerator<RawSample>>(StringComparer.Ordinal);
        PackingLoop? loop = null;
        try
        {
            foreach (DataGroup group in _groups)
            {
                SourcePosition? after = null;
                if (group.ResumeDataStatus && _resume is not null && _resume.LastRead.TryGetValue(group.Name, out var saved))
                {
                    after = saved;
                    _lastRead[group.Name] = saved;
                }
                iterators[group.Name] = group.Source.ReadAsync(_slice, NewShuffle(), after, _skips, cancellationToken).GetAsyncEnumerator(cancellationToken);
            }

            async ValueTask<PackableSample> NextAsync(DataGroup group, CancellationToken ct)
            {
                IAsyncEnumerator<RawSample> iterator = iterators[group.Name];
                SourcePosition? firstFailure = null; // a full pass of failures means the group can yield nothing
                while (true)
                {
                    if (!await iterator.MoveNextAsync().ConfigureAwait(false))
                        throw new InvalidOperationException($"Data source '{group.Name}' ended; sources must loop forever.");
                    RawSample raw = iterator.Current;
                    _lastRead[group.Name] = raw.Index.Position;
                    long seed = parsing.NextInt(0, long.MaxValue);
                    PackableSample? sample = Build(group, raw with { Index = raw.Index with { SampleSeed = seed } }, seed);
                    if (sample is not null) return sample;
                    if (firstFailure is null) firstFailure = raw.Index.Position;
                    else if (firstFailure.Equals(raw.Index.Position))
                        throw new InvalidOperationException(
                            $"Dataset group '{group.Name}' yielded no valid sample in a full pass over worker {_worker}'s slice; see the skip warnings.");
                }
            }

            var packer = new SequencePacker(_options.Packing, _tokens);
            loop = new PackingLoop(
                [.. _groups.Select(g => new PackingGroup(g.Name, g.Weight, g.IsMandatory, ct => NextAsync(g, ct)))],
                _options.Packing, packer, streams.For(RandomPurposes.GroupSampling), streams.For(RandomPurposes.ConditionDropout),
                streams.For(RandomPurposes.Timesteps), _skips, _options.Rank);
            if (_resume is not null) loop.RestoreBuffer(await RereadBufferAsync(cancellationToken).ConfigureAwait(false));

            while (true)
            {
                PackedBatch batch = await loop.NextBatchAsync(cancellationToken).ConfigureAwait(false);
                var snapshot = new WorkerSnapshot(new Dictionary<string, SourcePosition>(_lastRead, StringComparer.Ordinal),
                                                  [.. loop.Buffer.Select(s => s.Index)], streams.GetStates());
                try
                {
                    await output.WriteAsync(new WorkerBatch(batch, snapshot), cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    batch.Dispose();
                    throw;
                }
            }
        }
        finally
        {
            loop?.Dispose();
            foreach (var iterator in iterators.Values) await iterator.DisposeAsync().ConfigureAwait(false);
        }
    }

    private PackableSample? Build(DataGroup group, RawSample raw, long seed)
    {
        using var sampleRandom = new SeededRandomSource(unchecked((ulong)seed));
        return group.Builder.Build(raw, sampleRandom);
    }

    /// <summary>Rebuilds the buffered samples of the snapshot from their positions and seeds (the reference loses them).</summary>
    private async Task<List<PackableSample>> RereadBufferAsync(CancellationToken cancellationToken)
    {
        var samples = new List<PackableSample>();
        foreach (SampleDataIndex entry in _resume!.Buffer)
        {
            DataGroup? group = _groups.FirstOrDefault(g => g.Name == entry.Group);
            if (group is null || !group.ResumeDataStatus) continue;
            if (entry.SampleSeed is not { } seed)
                throw new InvalidOperationException($"Buffered sample {entry.Position} of group '{entry.Group}' has no sample seed, so it cannot be rebuilt exactly.");
            RawSample? raw = await group.Source.ReadAtAsync(_slice, NewShuffle(), entry.Position, _skips, cancellationToken).ConfigureAwait(false);
            if (raw is null) continue; // the record went bad since it was buffered: counted by the source/builder
            if (Build(group, raw with { Index = raw.Index with { SampleSeed = seed } }, seed) is { } sample) samples.Add(sample);
        }
        return samples;
    }
}
