using System.Text.Json;
using Bagel.Core.Metrics;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Metrics;

namespace Bagel.Tests.Training.Metrics;

public sealed class JsonlMetricSinkTests
{
    [Fact]
    public async Task EachStepIsOneJsonLineUnderTheReferenceNamesAndReopeningAppends()
    {
        using var folder = new TempDirectory();
        string path = Path.Combine(folder.Path, JsonlMetricSink.DefaultFileName);
        var time = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        await using (var sink = new JsonlMetricSink(path))
        {
            await sink.WriteAsync(new StepMetrics(0, time, new Dictionary<string, double> { [ReferenceMetricNames.Mse] = 0.5, [ReferenceMetricNames.Ce] = double.NaN }), TestContext.Current.CancellationToken);
            await sink.FlushAsync(TestContext.Current.CancellationToken);
        }
        await using (var sink = new JsonlMetricSink(path))
            await sink.WriteAsync(new StepMetrics(10, time, new Dictionary<string, double> { [ReferenceMetricNames.Lr] = 1e-4 }), TestContext.Current.CancellationToken);

        string[] lines = await File.ReadAllLinesAsync(path, TestContext.Current.CancellationToken);
        Assert.Equal(2, lines.Length);
        using JsonDocument first = JsonDocument.Parse(lines[0]);
        Assert.Equal(0, first.RootElement.GetProperty("step").GetInt64());
        Assert.Equal("2026-01-02T03:04:05.0000000Z", first.RootElement.GetProperty("time").GetString());
        Assert.Equal(0.5, first.RootElement.GetProperty("mse").GetDouble());
        Assert.Equal("NaN", first.RootElement.GetProperty("ce").GetString());
        using JsonDocument second = JsonDocument.Parse(lines[1]);
        Assert.Equal(1e-4, second.RootElement.GetProperty("lr").GetDouble());
    }
}
