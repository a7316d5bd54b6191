using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Data.Pipeline;

namespace Bagel.Training.Loop;

/// <summary>
/// Where the <see cref="Trainer"/> gets its packed batches: a resumable stream of batches and, for exact resume, the
/// status after the last batch taken (saved with every checkpoint).
/// </summary>
/// <param name="Read">Opens the stream, starting after <c>resume</c> when it is not null; the trainer disposes each batch.</param>
/// <param name="CaptureStatus">This rank's data status after the last batch taken; null when the source cannot resume
/// (checkpoints then hold no data status and a resume restarts the data from its beginning).</param>
/// <param name="NumWorkers">Workers per rank the status is saved with (a resume with another count is refused).</param>
/// <param name="SkippedSamples">Samples skipped so far (bad records, oversize samples), for the log line; null counts none.</param>
public sealed record TrainingDataSource(
    Func<RankDataStatus?, CancellationToken, IAsyncEnumerable<PackedBatch>> Read,
    Func<RankDataStatus>? CaptureStatus,
    int NumWorkers,
    Func<long>? SkippedSamples = null)
{
    /// <summary>The source over a <see cref="DataPipeline"/> built with <paramref name="numWorkers"/> workers.</summary>
    public static TrainingDataSource FromPipeline(DataPipeline pipeline, int numWorkers)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentOutOfRangeException.ThrowIfNegative(numWorkers);
        return new TrainingDataSource(pipeline.ReadAsync, pipeline.CaptureStatus, numWorkers, () => pipeline.Skips.Total);
    }
}
