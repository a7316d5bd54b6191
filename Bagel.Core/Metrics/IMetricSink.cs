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

    /// <summary>
    /// Called once before a run's first step with that step's 0-based index (the resumed checkpoint's completed steps;
    /// 0 from scratch): a sink that keeps files forgets every record of that step or later, so that the steps a resumed
    /// run trains again are recorded once, not twice. The default does nothing (for sinks that keep no history).
    /// </summary>
    /// <param name="step">The first step the run trains.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <returns>A task that completes when the older records are gone.</returns>
    ValueTask DiscardFromStepAsync(long step, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
}
