using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;
using Bagel.Data.Diagnostics;
using Bagel.Data.Tokenization;

namespace Bagel.Data.Pipeline;

/// <summary>A data worker failed; the inner exception is its error.</summary>
public sealed class DataPipelineException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which worker failed.</param>
    /// <param name="innerException">Its error.</param>
    public DataPipelineException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

/// <summary>
/// Streams packed batches for one rank: <c>num_workers</c> workers decode, transform and pack in parallel, each
/// up to <c>prefetch_factor</c> batches ahead, and batches are taken from the workers in turn (as the reference's
/// DataLoader does), so the sequence is deterministic whatever the timing. <see cref="CaptureStatus"/> describes the
/// state after the last batch taken — every worker's read positions, buffered samples and random states — so a
/// restart from it yields exactly the batches that would have followed; batches built ahead but not taken are simply
/// rebuilt. A worker's exception ends the stream with a <see cref="DataPipelineException"/>; cancellation stops every
/// worker without deadlock.
/// </summary>
public sealed class DataPipeline
{
    private readonly IReadOnlyList<DataGroup> _groups;
    private readonly BagelSpecialTokenIds _tokens;
    private readonly DataPipelineOptions _options;
    private readonly DataSkipCounters _skips;
    private readonly object _gate = new();
    private readonly Dictionary<int, WorkerSnapshot> _consumed = [];
    private int _nextWorker;

    /// <summary>Creates the pipeline.</summary>
    /// <param name="groups">The dataset groups, in configuration order.</param>
    /// <param name="tokens">The marker token ids.</param>
    /// <param name="options">Workers, seeds and packing settings.</param>
    /// <param name="skips">Where skipped records are counted.</param>
    public DataPipeline(IReadOnlyList<DataGroup> groups, BagelSpecialTokenIds tokens, DataPipelineOptions options, DataSkipCounters skips)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(options);
        if (groups.Count == 0) throw new ArgumentException("The data pipeline needs at least one dataset group.", nameof(groups));
        if (groups.Select(g => g.Name).Distinct(StringComparer.Ordinal).Count() != groups.Count)
            throw new ArgumentException("Dataset group names must be unique.", nameof(groups));
        options.Validate();
        _groups = groups;
        _tokens = tokens ?? throw new ArgumentNullException(nameof(tokens));
        _options = options;
        _skips = skips ?? throw new ArgumentNullException(nameof(skips));
    }

    /// <summary>The skip counters.</summary>
    public DataSkipCounters Skips => _skips;

    /// <summary>The dataset groups, in configuration order (their sources tell how many units each has).</summary>
    public IReadOnlyList<DataGroup> Groups => _groups;

    private int WorkerCount => Math.Max(1, _options.NumWorkers);

    /// <summary>Streams batches forever (the caller disposes each batch), starting from <paramref name="resume"/> when given.</summary>
    /// <param name="resume">This rank's saved status (from <see cref="CaptureStatus"/>), or null for a fresh start.</param>
    /// <param name="cancellationToken">Stops the stream and every worker.</param>
    /// <returns>The batches.</returns>
    public async IAsyncEnumerable<PackedBatch> ReadAsync(RankDataStatus? resume = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Dictionary<int, WorkerSnapshot> start = resume is null ? [] : FromStatus(resume);
        lock (_gate)
        {
            _consumed.Clear();
            foreach (var (worker, snapshot) in start) _consumed[worker] = snapshot;
            _nextWorker = resume?.NextWorker ?? 0;
            if (_nextWorker < 0 || _nextWorker >= WorkerCount)
                throw new ArgumentException($"The saved status names next worker {_nextWorker}, outside 0..{WorkerCount - 1}.", nameof(resume));
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var channels = new Channel<WorkerBatch>[WorkerCount];
        var tasks = new Task[WorkerCount];
        for (int w = 0; w < WorkerCount; w++)
        {
            var channel = channels[w] = Channel.CreateBounded<WorkerBatch>(new BoundedChannelOptions(_options.PrefetchFactor)
            {
                SingleReader = true,
                SingleWriter = true,
                FullMode = BoundedChannelFullMode.Wait,
            });
            var worker = new DataWorker(w, _groups, _options, _tokens, _skips, start.GetValueOrDefault(w));
            tasks[w] = Task.Run(async () =>
            {
                try
                {
                    await worker.RunAsync(channel.Writer, stop.Token).ConfigureAwait(false);
                    channel.Writer.TryComplete();
                }
                catch (Exception ex)
                {
                    channel.Writer.TryComplete(ex);
                }
            }, CancellationToken.None);
        }

        try
        {
            while (true)
            {
                int w;
                lock (_gate) w = _nextWorker;
                WorkerBatch item;
                try
                {
                    item = await channels[w].Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (ChannelClosedException closed)
                {
                    Exception cause = closed.InnerException ?? closed;
                    if (cause is OperationCanceledException && cancellationToken.IsCancellationRequested) throw cause;
                    throw new DataPipelineException($"Data worker {w} of rank {_options.Rank} failed: {cause.Message}", cause);
                }
                lock (_gate)
                {
                    _consumed[w] = item.After;
                    _nextWorker = (w + 1) % WorkerCount;
                }
                yield return item.Batch;
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            foreach (var channel in channels)
            {
                while (channel.Reader.TryRead(out WorkerBatch? pending)) pending.Batch.Dispose();
            }
            try
            {
                await Task.WhenAll(tasks).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            foreach (var channel in channels)
            {
                while (channel.Reader.TryRead(out WorkerBatch? pending)) pending.Batch.Dispose();
            }
        }
    }

    /// <summary>
    /// The state after the last batch taken from <see cref="ReadAsync"/>: per group and worker the last position read,
    /// the packer buffers (with sample seeds), every worker's random states and the next worker in turn.
    /// </summary>
    /// <returns>This rank's status, ready for <see cref="DataStatusDocument"/>.</returns>
    public RankDataStatus CaptureStatus()
    {
        lock (_gate)
        {
            var positions = new Dictionary<string, Dictionary<int, SourcePosition>>(StringComparer.Ordinal);
            foreach (var (worker, snapshot) in _consumed)
            {
                foreach (var (group, position) in snapshot.LastRead)
                {
                    if (!positions.TryGetValue(group, out var byWorker)) positions[group] = byWorker = [];
                    byWorker[worker] = position;
                }
            }
            return new RankDataStatus
            {
                Rank = _options.Rank,
                Positions = positions.ToDictionary(p => p.Key, p => (IReadOnlyDictionary<int, SourcePosition>)p.Value, StringComparer.Ordinal),
                PackerBuffer = [.. _consumed.OrderBy(c => c.Key).SelectMany(c => c.Value.Buffer)],
                WorkerRngStates = _consumed.ToDictionary(c => c.Key, c => c.Value.RngStates),
                NextWorker = _nextWorker,
            };
        }
    }

    private Dictionary<int, WorkerSnapshot> FromStatus(RankDataStatus status)
    {
        var workers = status.Positions.Values.SelectMany(p => p.Keys).Concat(status.WorkerRngStates.Keys).Concat(status.PackerBuffer.Select(b => b.WorkerId)).Distinct();
        var result = new Dictionary<int, WorkerSnapshot>();
        foreach (int worker in workers)
        {
            if (worker < 0 || worker >= WorkerCount)
                throw new ArgumentException($"The saved data status names worker {worker}, but this pipeline has {WorkerCount} worker(s); resume with the same num_workers.", nameof(status));
            var lastRead = status.Positions.Where(p => p.Value.ContainsKey(worker)).ToDictionary(p => p.Key, p => p.Value[worker], StringComparer.Ordinal);
            var buffer = status.PackerBuffer.Where(b => b.WorkerId == worker).ToList();
            var rng = status.WorkerRngStates.GetValueOrDefault(worker) ?? new Dictionary<string, RandomSourceState>();
            result[worker] = new WorkerSnapshot(lastRead, buffer, rng);
        }
        return result;
    }
}
