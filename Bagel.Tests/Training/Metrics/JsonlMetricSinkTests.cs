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

    private static StepMetrics Step(long step) =>
        new(step, new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), new Dictionary<string, double> { [ReferenceMetricNames.Mse] = step * 0.25 });

    [Fact]
    public async Task EveryWrittenLineIsInTheFileAtOnceWithoutAFlush()
    {
        using var folder = new TempDirectory();
        string path = Path.Combine(folder.Path, JsonlMetricSink.DefaultFileName);
        await using var sink = new JsonlMetricSink(path);
        for (long step = 0; step < 3; step++) await sink.WriteAsync(Step(step), TestContext.Current.CancellationToken);

        // Read while the sink is open and unflushed: a killed process would leave exactly this.
        using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        string text = await reader.ReadToEndAsync(TestContext.Current.CancellationToken);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        Assert.Equal([0L, 1L, 2L], text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()));
    }

    [Fact]
    public async Task DiscardingFromAStepKeepsWholeEarlierLinesOnlyAndTheResumedRunAppendsEachStepOnce()
    {
        using var folder = new TempDirectory();
        string path = Path.Combine(folder.Path, JsonlMetricSink.DefaultFileName);
        await using (var sink = new JsonlMetricSink(path))
            for (long step = 0; step < 6; step++) await sink.WriteAsync(Step(step), TestContext.Current.CancellationToken);
        // A killed run: a line spliced into another and a half-written last line.
        string[] written = await File.ReadAllLinesAsync(path, TestContext.Current.CancellationToken);
        written[2] = written[2][..20] + written[3];
        await File.WriteAllTextAsync(path, string.Join("\n", written) + "\n" + written[5][..15], TestContext.Current.CancellationToken);

        await using (IMetricSink sink = new JsonlMetricSink(path))
        {
            await sink.DiscardFromStepAsync(4, TestContext.Current.CancellationToken);
            for (long step = 4; step < 7; step++) await sink.WriteAsync(Step(step), TestContext.Current.CancellationToken);
        }

        string[] lines = await File.ReadAllLinesAsync(path, TestContext.Current.CancellationToken);
        long[] steps = [.. lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64())];
        Assert.Equal([0L, 1L, 3L, 4L, 5L, 6L], steps); // the spliced line (2) is dropped whole, 4 and 5 are written once
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp"));
    }
}
