namespace Bagel.Core.Metrics;

/// <summary>
/// One training metric: its key in step records and sinks, a System.Diagnostics.Metrics instrument name
/// (lower-case, dot-separated, under <see cref="MetricCatalog.MeterName"/>), its UCUM-style unit and a description.
/// </summary>
/// <param name="Key">The key in <see cref="StepMetrics.Values"/> (the reference's W&amp;B key where one exists).</param>
/// <param name="InstrumentName">The instrument name, e.g. <c>bagel.train.loss.mse</c>.</param>
/// <param name="Unit">The unit, e.g. <c>{token}/s</c>, <c>MiBy</c>, <c>1</c> for dimensionless.</param>
/// <param name="Description">What it measures.</param>
/// <param name="FromReference">Whether the reference logs it under the same key.</param>
public sealed record MetricDefinition(string Key, string InstrumentName, string Unit, string Description, bool FromReference);
