namespace Bagel.Core.Metrics;

/// <summary>The metrics of one logged training step, as sinks receive them.</summary>
/// <param name="Step">The training step (<c>curr_step</c>, 0-based).</param>
/// <param name="Timestamp">When the values were taken.</param>
/// <param name="Values">Values by key (<see cref="ReferenceMetricNames"/>, <see cref="BagelMetricNames"/>); keys
/// absent from a step were not measured (e.g. <c>mse</c> without generation).</param>
public sealed record StepMetrics(long Step, DateTimeOffset Timestamp, IReadOnlyDictionary<string, double> Values)
{
    /// <summary>The value of <paramref name="key"/>, or null when absent.</summary>
    /// <param name="key">The metric key.</param>
    /// <returns>The value or null.</returns>
    public double? Get(string key) => Values.TryGetValue(key, out double value) ? value : null;
}
