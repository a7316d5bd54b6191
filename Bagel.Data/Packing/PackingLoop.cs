using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Data.Diagnostics;
using static TorchSharp.torch;

namespace Bagel.Data.Packing;

/// <summary>One dataset group as the packing loop sees it: a weight, a mandatory flag and an endless sample stream.</summary>
/// <param name="Name">The group name (for messages and counters).</param>
/// <param name="Weight">The sampling weight (<c>weight</c>).</param>
/// <param name="IsMandatory">Every batch starts with one sample of this group (<c>is_mandatory</c>).</param>
/// <param name="Next">Returns the group's next sample (the stream never ends; it wraps).</param>
public sealed record PackingGroup(string Name, double Weight, bool IsMandatory, Func<CancellationToken, ValueTask<PackableSample>> Next);

/// <summary>
/// One data worker's packing loop, as the reference's <c>PackedDataset.__iter__</c> (training.md 4.4): a new batch
/// first takes one sample of each mandatory group; then buffered samples are preferred while the batch is short;
/// otherwise a group is drawn by weight. Samples over <c>max_num_tokens_per_sample</c> are skipped; a sample that
/// does not fit goes to the buffer, or — when the buffer is full or it came from the buffer — the batch is yielded
/// and that sample is dropped (the reference's behaviour, kept for parity and counted as
/// <see cref="SkipReason.PackerOverflow"/>). A batch is yielded once it reaches <c>expected_num_tokens</c>.
/// </summary>
public sealed class PackingLoop : IDisposable
{
    private readonly IReadOnlyList<PackingGroup> _groups;
    private readonly double[] _cumulative;
    private readonly PackingOptions _options;
    private readonly SequencePacker _packer;
    private readonly IRandomSource _groupSampling;
    private readonly IRandomSource _dropout;
    private readonly IRandomSource _timesteps;
    private readonly DataSkipCounters _skips;
    private readonly List<PackableSample> _buffer = [];
    private readonly int _rank;

    /// <summary>
    /// Creates the loop with the reference's two random streams: the reference draws the group choice and the
    /// conditioning dropout from one Python <c>random</c> stream, interleaved in packing order, and the timesteps from
    /// numpy. Passing that one uniform source here reproduces its draws exactly (the same as passing it twice to the
    /// other constructor).
    /// </summary>
    /// <param name="groups">The groups in configuration order (the order of the cumulative weight table).</param>
    /// <param name="options">Token budgets and dropout probabilities.</param>
    /// <param name="packer">Packs one sample.</param>
    /// <param name="uniform">Uniform draws choosing the group and deciding the conditioning dropout (the reference's
    /// <c>random.random()</c>).</param>
    /// <param name="timesteps">Standard-normal timestep draws (the reference's <c>np.random.randn()</c>).</param>
    /// <param name="skips">Where skipped samples are counted.</param>
    /// <param name="rank">The rank the batches belong to.</param>
    public PackingLoop(IReadOnlyList<PackingGroup> groups, PackingOptions options, SequencePacker packer, IRandomSource uniform,
        IRandomSource timesteps, DataSkipCounters skips, int rank = 0)
        : this(groups, options, packer, uniform, uniform, timesteps, skips, rank)
    {
    }

    /// <summary>Creates the loop with separate group-sampling and dropout streams (the data workers' layout, where
    /// each purpose has its own resumable stream).</summary>
    /// <param name="groups">The groups in configuration order (the order of the cumulative weight table).</param>
    /// <param name="options">Token budgets and dropout probabilities.</param>
    /// <param name="packer">Packs one sample.</param>
    /// <param name="groupSampling">Uniform draws choosing the group (the reference's <c>random.random()</c>).</param>
    /// <param name="dropout">Uniform draws of the conditioning dropout.</param>
    /// <param name="timesteps">Standard-normal timestep draws.</param>
    /// <param name="skips">Where skipped samples are counted.</param>
    /// <param name="rank">The rank the batches belong to.</param>
    public PackingLoop(IReadOnlyList<PackingGroup> groups, PackingOptions options, SequencePacker packer, IRandomSource groupSampling,
        IRandomSource dropout, IRandomSource timesteps, DataSkipCounters skips, int rank = 0)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (groups.Count == 0) throw new ArgumentException("The packing loop needs at least one dataset group.", nameof(groups));
        double total = groups.Sum(g => g.Weight);
        if (!(total > 0)) throw new ArgumentException($"The group weights sum to {total}; at least one weight must be positive.", nameof(groups));
        _groups = groups;
        // The reference's table: sum(weights[:i + 1]) / total, compared with '<'.
        _cumulative = [.. Enumerable.Range(0, groups.Count).Select(i => groups.Take(i + 1).Sum(g => g.Weight) / total)];
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _packer = packer ?? throw new ArgumentNullException(nameof(packer));
        _groupSampling = groupSampling ?? throw new ArgumentNullException(nameof(groupSampling));
        _dropout = dropout ?? throw new ArgumentNullException(nameof(dropout));
        _timesteps = timesteps ?? throw new ArgumentNullException(nameof(timesteps));
        _skips = skips ?? throw new ArgumentNullException(nameof(skips));
        _rank = rank;
    }

    /// <summary>The samples waiting in the overflow buffer, oldest first (for the data status).</summary>
    public IReadOnlyList<PackableSample> Buffer => _buffer;

    /// <summary>Puts samples back into the buffer on resume (oldest first); the loop takes ownership.</summary>
    /// <param name="samples">The re-read buffered samples.</param>
    public void RestoreBuffer(IEnumerable<PackableSample> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        _buffer.AddRange(samples);
    }

    /// <summary>Builds the next packed batch. The caller owns (and disposes) the result.</summary>
    /// <param name="cancellationToken">Stops the loop between samples.</param>
    /// <returns>The batch, already validated.</returns>
    public async ValueTask<PackedBatch> NextBatchAsync(CancellationToken cancellationToken = default)
    {
        var builder = new PackedBatchBuilder { Rank = _rank, VaePixelsPerLatentToken = _options.PixelsPerLatentToken };
        var packed = new List<PackableSample>();
        var owned = new List<Tensor>();
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (builder.SequenceLength == 0)
                {
                    foreach (PackingGroup group in _groups.Where(g => g.IsMandatory))
                    {
                        while (true)
                        {
                            PackableSample mandatory = await group.Next(cancellationToken).ConfigureAwait(false);
                            if (mandatory.PackedLength < _options.MaxNumTokensPerSample) // strictly less, as the reference
                            {
                                PackInto(builder, mandatory, packed, owned);
                                break;
                            }
                            SkipTooLong(mandatory);
                        }
                    }
                }

                PackableSample sample;
                bool fromBuffer;
                if (builder.SequenceLength < _options.PreferBufferBefore && _buffer.Count > 0)
                {
                    sample = _buffer[0];
                    _buffer.RemoveAt(0);
                    fromBuffer = true;
                }
                else
                {
                    double u = _groupSampling.NextUniform();
                    int index = Array.FindIndex(_cumulative, c => u < c);
                    sample = await _groups[Math.Max(0, index)].Next(cancellationToken).ConfigureAwait(false);
                    fromBuffer = false;
                }

                if (sample.PackedLength > _options.MaxNumTokensPerSample)
                {
                    SkipTooLong(sample);
                    continue;
                }
                if (builder.SequenceLength + sample.PackedLength > _options.MaxNumTokens)
                {
                    if (_buffer.Count < _options.MaxBufferSize && !fromBuffer)
                    {
                        _buffer.Add(sample);
                        continue;
                    }
                    _skips.Skip(sample.Index.Group, SkipReason.PackerOverflow, sample.Origin,
                        $"{sample.PackedLength} tokens do not fit the batch ({builder.SequenceLength} of max_num_tokens {_options.MaxNumTokens}) and the buffer is full or the sample came from it; dropped as the reference does.");
                    sample.Dispose();
                    return Finish(builder);
                }
                PackInto(builder, sample, packed, owned);
                if (builder.SequenceLength >= _options.ExpectedNumTokens) return Finish(builder);
            }
        }
        finally
        {
            foreach (PackableSample s in packed) s.Dispose();
            foreach (Tensor t in owned) t.Dispose();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (PackableSample s in _buffer) s.Dispose();
        _buffer.Clear();
    }

    private void PackInto(PackedBatchBuilder builder, PackableSample sample, List<PackableSample> packed, List<Tensor> owned)
    {
        packed.Add(sample);
        _packer.Pack(builder, sample, _dropout, _timesteps, owned);
    }

    private void SkipTooLong(PackableSample sample)
    {
        _skips.Skip(sample.Index.Group, SkipReason.TooLong, sample.Origin,
            $"{sample.PackedLength} tokens exceed max_num_tokens_per_sample {_options.MaxNumTokensPerSample}.");
        sample.Dispose();
    }

    private PackedBatch Finish(PackedBatchBuilder builder) =>
        builder.Build(validate: true, new PackedBatchLimits
        {
            MaxLatentSize = _options.MaxLatentSize,
            VitMaxPatchesPerSide = _options.MaxNumPatchPerSide,
            InterpolatedLatentPositions = _options.InterpolatePos,
        });
}
