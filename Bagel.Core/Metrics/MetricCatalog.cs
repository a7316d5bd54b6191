namespace Bagel.Core.Metrics;

/// <summary>
/// Every fixed metric with its instrument name, unit and description, for sinks that publish through
/// System.Diagnostics.Metrics (meter <see cref="MeterName"/>) or label their output.
/// </summary>
public static class MetricCatalog
{
    /// <summary>The meter name training instruments are created under.</summary>
    public const string MeterName = "Bagel.Training";

    /// <summary>The reference's metrics (training.md §5.6).</summary>
    public static IReadOnlyList<MetricDefinition> Reference { get; } =
    [
        new(ReferenceMetricNames.Mse, "bagel.train.loss.mse", "1", "Flow-matching MSE: channel mean, then mean over noisy latent tokens of all ranks.", true),
        new(ReferenceMetricNames.Ce, "bagel.train.loss.ce", "1", "Cross-entropy (nats): mean over labelled tokens of all ranks.", true),
        new(ReferenceMetricNames.Lr, "bagel.train.learning_rate", "1", "Learning rate of this step's update.", true),
        new(ReferenceMetricNames.TotalMseTokens, "bagel.train.tokens.mse", "{token}", "Noisy latent tokens with MSE loss in this step, all ranks.", true),
        new(ReferenceMetricNames.TotalCeTokens, "bagel.train.tokens.ce", "{token}", "Tokens with CE loss in this step, all ranks.", true),
        new(ReferenceMetricNames.TotalNorm, "bagel.train.grad_norm", "1", "Global gradient L2 norm before clipping.", true),
        new(ReferenceMetricNames.TotalSamples, "bagel.train.samples", "{sample}", "Samples in this step, all ranks.", true),
        new(ReferenceMetricNames.TokensPerSec, "bagel.train.throughput", "{token}/s", "Real tokens per second, all ranks.", true),
        new(ReferenceMetricNames.TokensPerStep, "bagel.train.tokens", "{token}", "Real tokens in this step, all ranks.", true),
        new(ReferenceMetricNames.ActualTflops, "bagel.train.tflops", "TFLOP/s", "Achieved TFLOP/s per GPU (reference FLOPs estimate).", true),
        new(ReferenceMetricNames.Mfu, "bagel.train.mfu", "1", "Model FLOPs utilisation (fraction of the GPU's peak; 0 when unknown).", true),
        new(ReferenceMetricNames.MemAllocated, "bagel.train.memory.allocated", "MiBy", "Peak allocated accelerator memory, max over ranks.", true),
        new(ReferenceMetricNames.MemCache, "bagel.train.memory.reserved", "MiBy", "Peak reserved accelerator memory, max over ranks.", true),
    ];

    /// <summary>Bagel.NET's own fixed metrics (validation losses are per group; see <see cref="BagelMetricNames.ValidationLoss"/>).</summary>
    public static IReadOnlyList<MetricDefinition> Bagel { get; } =
    [
        new(BagelMetricNames.StepsPerSec, "bagel.train.step_rate", "1/s", "Optimizer steps per second since the last log.", false),
        new(BagelMetricNames.SkippedSamples, "bagel.data.skipped_samples", "{sample}", "Samples dropped by the packer in this step.", false),
        new(BagelMetricNames.SkippedStepsNonFinite, "bagel.train.skipped_steps", "{step}", "Steps skipped so far for a non-finite loss or gradient norm.", false),
        new(BagelMetricNames.TotalLoss, "bagel.train.loss", "1", "Total loss used by backward (weighted CE + MSE).", false),
        new(BagelMetricNames.DataWaitSec, "bagel.data.wait", "s", "Seconds the step waited for its batch.", false),
    ];

    /// <summary>Every fixed metric: <see cref="Reference"/> then <see cref="Bagel"/>.</summary>
    public static IReadOnlyList<MetricDefinition> All { get; } = [.. Reference, .. Bagel];

    /// <summary>Looks up a fixed metric by key.</summary>
    /// <param name="key">The key.</param>
    /// <returns>The definition, or null for unknown keys (e.g. per-group validation losses).</returns>
    public static MetricDefinition? Find(string key) => All.FirstOrDefault(d => d.Key == key);
}
