using Bagel.Core.Metrics;

namespace Bagel.Tests.Core.Metrics;

public sealed class MetricCatalogTests
{
    [Fact]
    public void ReferenceKeysAreTheThirteenWandbKeysInOrder()
    {
        // training.md §5.6: the keys the reference passes to wandb.log.
        string[] wandb = ["mse", "ce", "lr", "total_mse_tokens", "total_ce_tokens", "total_norm", "total_samples",
                          "tokens_per_sec", "tokens_per_step", "actual_tflops", "mfu", "mem_allocated", "mem_cache"];
        Assert.Equal(wandb, MetricCatalog.Reference.Select(d => d.Key));
        Assert.All(MetricCatalog.Reference, d => Assert.True(d.FromReference));
    }

    [Fact]
    public void OurMetricsAreSeparateAndNeverReuseAReferenceKey()
    {
        Assert.All(MetricCatalog.Bagel, d => Assert.False(d.FromReference));
        Assert.Empty(MetricCatalog.Bagel.Select(d => d.Key).Intersect(MetricCatalog.Reference.Select(d => d.Key)));
        Assert.Equal(MetricCatalog.All.Count, MetricCatalog.All.Select(d => d.Key).Distinct().Count());
    }

    [Fact]
    public void InstrumentNamesFollowSystemDiagnosticsMetricsConventions()
    {
        Assert.Equal(MetricCatalog.All.Count, MetricCatalog.All.Select(d => d.InstrumentName).Distinct().Count());
        Assert.All(MetricCatalog.All, d =>
        {
            Assert.Matches("^bagel(\\.[a-z_]+)+$", d.InstrumentName);
            Assert.False(string.IsNullOrWhiteSpace(d.Unit));
            Assert.False(string.IsNullOrWhiteSpace(d.Description));
        });
    }

    [Fact]
    public void ValidationLossKeysArePerGroup()
    {
        Assert.Equal("val/t2i_pretrain/mse", BagelMetricNames.ValidationLoss("t2i_pretrain", ReferenceMetricNames.Mse));
        Assert.Equal("val/vlm_sft/ce", BagelMetricNames.ValidationLoss("vlm_sft", ReferenceMetricNames.Ce));
        Assert.Throws<ArgumentException>(() => BagelMetricNames.ValidationLoss("a/b", ReferenceMetricNames.Ce));
        Assert.Throws<ArgumentException>(() => BagelMetricNames.ValidationLoss("g", "lr"));
        Assert.Null(MetricCatalog.Find("val/g/ce"));
        Assert.Equal("MiBy", MetricCatalog.Find(ReferenceMetricNames.MemCache)!.Unit);
    }

    [Fact]
    public void StepMetricsReturnNullForUnmeasuredKeys()
    {
        var metrics = new StepMetrics(3, DateTimeOffset.UnixEpoch, new Dictionary<string, double> { [ReferenceMetricNames.Ce] = 0.55 });
        Assert.Equal(0.55, metrics.Get(ReferenceMetricNames.Ce));
        Assert.Null(metrics.Get(ReferenceMetricNames.Mse));
    }
}
