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
}
