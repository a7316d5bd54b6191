using Bagel.Core.Metrics;
using Bagel.Core.Native;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Metrics;

namespace Bagel.Tests.Training.Metrics;

public sealed class TensorBoardMetricSinkTests
{
    public TensorBoardMetricSinkTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public async Task AnIndependentReaderFindsEveryMetricAtEveryLoggedStepWithValidCrcs()
    {
        using var folder = new TempDirectory();
        string[] keys = [.. MetricCatalog.All.Select(d => d.Key)];
        long[] steps = [0, 10, 20, 30];
        var start = new DateTimeOffset(2026, 5, 1, 12, 0, 0, TimeSpan.Zero);
        var written = new Dictionary<(long, string), double>();
        await using (var sink = new TensorBoardMetricSink(Path.Combine(folder.Path, "tb")))
        {
            foreach (long step in steps)
            {
                var values = new Dictionary<string, double>();
                for (int k = 0; k < keys.Length; k++) written[(step, keys[k])] = values[keys[k]] = step * 0.5 + k + 0.25;
                await sink.WriteAsync(new StepMetrics(step, start.AddSeconds(step), values), TestContext.Current.CancellationToken);
            }
            await sink.FlushAsync(TestContext.Current.CancellationToken);
        }

        string file = Assert.Single(Directory.GetFiles(Path.Combine(folder.Path, "tb"), "events.out.tfevents.*"));
        List<TfRecordEventReader.Event> events = TfRecordEventReader.Read(file);

        Assert.Equal("brain.Event:2", events[0].FileVersion);
        var found = new Dictionary<(long, string), float>();
        foreach (TfRecordEventReader.Event e in events.Skip(1))
        {
            Assert.Equal(start.AddSeconds(e.Step).ToUnixTimeSeconds(), e.WallTime);
            foreach (TfRecordEventReader.ScalarValue value in e.Values) found.Add((e.Step, value.Tag), value.SimpleValue);
        }
        Assert.Equal(written.Count, found.Count);
        foreach (((long step, string key), double value) in written)
            Assert.Equal((float)value, found[(step, key)]);
    }

    [Fact]
    public async Task TheReaderRejectsACorruptedRecord()
    {
        using var folder = new TempDirectory();
        await using (var sink = new TensorBoardMetricSink(folder.Path))
            await sink.WriteAsync(new StepMetrics(1, DateTimeOffset.UnixEpoch, new Dictionary<string, double> { ["mse"] = 1 }), TestContext.Current.CancellationToken);
        string file = Directory.GetFiles(folder.Path, "events.out.tfevents.*").Single();
        byte[] bytes = File.ReadAllBytes(file);
        bytes[^6] ^= 0x40; // flip a bit inside the last record's data
        File.WriteAllBytes(file, bytes);

        Assert.Contains("CRC", Assert.Throws<InvalidDataException>(() => TfRecordEventReader.Read(file)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheCrcMatchesTheCastagnoliCheckValue()
    {
        // CRC-32C("123456789") = 0xE3069283 (the standard check value); masked as TensorBoard does.
        uint crc = 0xE3069283u;
        uint masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8u;

        Assert.Equal(masked, TfRecordEventReader.MaskedCrc32C("123456789"u8));
    }

    [Fact]
    public async Task AResumedRunLeavesEachStepOnceAcrossTheEventFiles()
    {
        using var folder = new TempDirectory();
        string logDir = Path.Combine(folder.Path, "tb");
        var start = new DateTimeOffset(2026, 5, 1, 12, 0, 0, TimeSpan.Zero);
        StepMetrics At(long step, double value) => new(step, start.AddSeconds(step), new Dictionary<string, double> { ["mse"] = value, ["lr"] = 1e-4 });
        await using (var first = new TensorBoardMetricSink(logDir))
            foreach (long step in new long[] { 0, 10, 20, 30 }) await first.WriteAsync(At(step, 1.0), TestContext.Current.CancellationToken);
        string firstFile = Assert.Single(Directory.GetFiles(logDir, "events.out.tfevents.*"));
        await File.AppendAllBytesAsync(firstFile, [0x21, 0, 0, 0, 0, 0, 0, 0, 1, 2], TestContext.Current.CancellationToken); // a record cut off by a kill
        await Task.Delay(1100, TestContext.Current.CancellationToken); // a second later: the writer names its file by the second

        await using (IMetricSink resumed = new TensorBoardMetricSink(logDir))
        {
            await resumed.DiscardFromStepAsync(20, TestContext.Current.CancellationToken);
            foreach (long step in new long[] { 20, 30, 40 }) await resumed.WriteAsync(At(step, 2.0), TestContext.Current.CancellationToken);
        }

        var seen = new List<(long Step, string Tag, float Value)>();
        foreach (string file in Directory.GetFiles(logDir, "events.out.tfevents.*").Order(StringComparer.Ordinal))
        {
            List<TfRecordEventReader.Event> events = TfRecordEventReader.Read(file); // throws on a damaged record
            Assert.Equal("brain.Event:2", events[0].FileVersion);
            seen.AddRange(events.SelectMany(e => e.Values.Select(v => (e.Step, v.Tag, v.SimpleValue))));
        }
        Assert.Equal(2, Directory.GetFiles(logDir, "events.out.tfevents.*").Length);
        Assert.Equal([0L, 10L, 20L, 30L, 40L], seen.Where(v => v.Tag == "mse").Select(v => v.Step).Order());
        Assert.All(seen.Where(v => v.Step >= 20), v => Assert.True(v.Tag != "mse" || v.Value == 2.0f, $"step {v.Step} kept the old run's value"));
        Assert.Equal(seen.Count, seen.Select(v => (v.Step, v.Tag)).Distinct().Count());
    }
}
