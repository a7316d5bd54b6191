using Bagel.Core.Metrics;

namespace Bagel.Training.Metrics;

/// <summary>The figures of one logged step, by name, as the reference sends them to W&amp;B (training.md 5.6), plus ours.</summary>
/// <param name="Mse">MSE loss.</param>
/// <param name="Ce">CE loss.</param>
/// <param name="LearningRate">Learning rate of the step's update.</param>
/// <param name="TotalMseTokens">Tokens with MSE loss.</param>
/// <param name="TotalCeTokens">Tokens with CE loss.</param>
/// <param name="TotalNorm">Gradient norm before clipping.</param>
/// <param name="TotalSamples">Samples in the batch.</param>
/// <param name="Throughput">Speed figures of the window.</param>
/// <param name="MemAllocatedMiB">Peak allocated accelerator memory in MiB (0 on CPU).</param>
/// <param name="MemCacheMiB">Peak reserved accelerator memory in MiB (0 on CPU).</param>
/// <param name="SkippedSamples">Samples the packer dropped in this step (ours).</param>
/// <param name="SkippedNonFiniteSteps">Steps skipped so far for NaN/Inf (ours).</param>
/// <param name="TotalLoss">The weighted loss backward used (ours).</param>
/// <param name="DataWaitSec">Seconds the step waited for its batch (ours).</param>
public sealed record StepFigures(double Mse, double Ce, double LearningRate, long TotalMseTokens, long TotalCeTokens, double TotalNorm,
    long TotalSamples, ThroughputReport Throughput, double MemAllocatedMiB = 0, double MemCacheMiB = 0, long SkippedSamples = 0,
    long SkippedNonFiniteSteps = 0, double? TotalLoss = null, double DataWaitSec = 0);

/// <summary>Turns <see cref="StepFigures"/> into <see cref="StepMetrics"/> under the reference's W&amp;B names and ours.</summary>
public static class StepMetricsFactory
{
    /// <summary>Every reference metric and ours for step <paramref name="step"/> (0-based, as the reference logs).</summary>
    public static StepMetrics Create(long step, DateTimeOffset timestamp, StepFigures figures)
    {
        ArgumentNullException.ThrowIfNull(figures);
        var values = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            [ReferenceMetricNames.Mse] = figures.Mse,
            [ReferenceMetricNames.Ce] = figures.Ce,
            [ReferenceMetricNames.Lr] = figures.LearningRate,
            [ReferenceMetricNames.TotalMseTokens] = figures.TotalMseTokens,
            [ReferenceMetricNames.TotalCeTokens] = figures.TotalCeTokens,
            [ReferenceMetricNames.TotalNorm] = figures.TotalNorm,
            [ReferenceMetricNames.TotalSamples] = figures.TotalSamples,
            [ReferenceMetricNames.TokensPerSec] = figures.Throughput.TokensPerSec,
            [ReferenceMetricNames.TokensPerStep] = figures.Throughput.TokensPerStep,
            [ReferenceMetricNames.ActualTflops] = figures.Throughput.ActualTflops,
            [ReferenceMetricNames.Mfu] = figures.Throughput.Mfu,
            [ReferenceMetricNames.MemAllocated] = figures.MemAllocatedMiB,
            [ReferenceMetricNames.MemCache] = figures.MemCacheMiB,
            [BagelMetricNames.StepsPerSec] = figures.Throughput.StepsPerSec,
            [BagelMetricNames.SkippedSamples] = figures.SkippedSamples,
            [BagelMetricNames.SkippedStepsNonFinite] = figures.SkippedNonFiniteSteps,
            [BagelMetricNames.DataWaitSec] = figures.DataWaitSec,
        };
        if (figures.TotalLoss is double total) values[BagelMetricNames.TotalLoss] = total;
        return new StepMetrics(step, timestamp, values);
    }
}
