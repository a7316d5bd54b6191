namespace Bagel.Core.Metrics;

/// <summary>
/// Receives step metrics (console, JSONL and TensorBoard sinks live in Bagel.Training). Called on rank 0 only, from
/// the training loop's thread; a sink must not throw for an unknown key.
/// </summary>
public interface IMetricSink : IAsyncDisposable
{
    /// <summary>Records one step's metrics.</summary>
    /// <param name="metrics">The metrics.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the metrics are accepted.</returns>
    ValueTask WriteAsync(StepMetrics metrics, CancellationToken cancellationToken = default);

    /// <summary>Pushes buffered output to its destination (called at checkpoints and at the end).</summary>
    /// <param name="cancellationToken">Cancels the flush.</param>
    /// <returns>A task that completes when flushed.</returns>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);
}
