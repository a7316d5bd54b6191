using Bagel.Core.Metrics;
using Bagel.Training.Metrics;

namespace Bagel.Tests.Training.Metrics;

public sealed class StepMetricsFactoryTests
{
    [Fact]
    public void EveryReferenceAndBagelMetricIsFilledFromTheFigures()
    {
        var figures = new StepFigures(Mse: 0.4, Ce: 0.5, LearningRate: 1e-4, TotalMseTokens: 64, TotalCeTokens: 12, TotalNorm: 0.9, TotalSamples: 3,
            Throughput: new ThroughputReport(2, 100, 50, 0.001, 0.1), SkippedSamples: 1, SkippedNonFiniteSteps: 2, TotalLoss: 0.9);

        StepMetrics metrics = StepMetricsFactory.Create(10, DateTimeOffset.UnixEpoch, figures);

        Assert.Equal(MetricCatalog.All.Select(d => d.Key).Order(StringComparer.Ordinal), metrics.Values.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(0.4, metrics.Get(ReferenceMetricNames.Mse));
        Assert.Equal(64, metrics.Get(ReferenceMetricNames.TotalMseTokens));
        Assert.Equal(50, metrics.Get(ReferenceMetricNames.TokensPerStep));
        Assert.Equal(2, metrics.Get(BagelMetricNames.StepsPerSec));
        Assert.Equal(2, metrics.Get(BagelMetricNames.SkippedStepsNonFinite));
    }
}
