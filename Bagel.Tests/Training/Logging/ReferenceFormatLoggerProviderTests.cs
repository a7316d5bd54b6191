using Bagel.Tests.Infrastructure;
using Bagel.Training.Logging;
using Microsoft.Extensions.Logging;

namespace Bagel.Tests.Training.Logging;

public sealed class ReferenceFormatLoggerProviderTests
{
    private sealed class FixedTime(DateTimeOffset utc, TimeZoneInfo zone) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => utc;

        public override TimeZoneInfo LocalTimeZone => zone;
    }

    private static readonly TimeZoneInfo PlusTwo = TimeZoneInfo.CreateCustomTimeZone("plus2", TimeSpan.FromHours(2), "plus2", "plus2");

    [Fact]
    public void RecordsHaveTheBracketedBlueLocalTimestampAndTheBareMessage()
    {
        var output = new StringWriter();
        var time = new FixedTime(new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.Zero), PlusTwo);
        using (var provider = new ReferenceFormatLoggerProvider(output, timeProvider: time, color: true))
        {
            ILogger logger = provider.CreateLogger("train");
            TrainingLog.Step(logger, "(step=0000000) Train Loss mse: 0.4063, ");
            logger.LogDebug("not at the reference's level");
        }

        Assert.Equal("[\u001b[34m2026-03-04 07:06:07\u001b[0m] (step=0000000) Train Loss mse: 0.4063, " + Environment.NewLine, output.ToString());
    }

    [Fact]
    public void ResultsDirLogAppendsAcrossRuns()
    {
        using var folder = new TempDirectory();
        var time = new FixedTime(DateTimeOffset.UnixEpoch, TimeZoneInfo.Utc);
        foreach (string message in new[] { "first run", "resumed run" })
        {
            using var provider = ReferenceFormatLoggerProvider.ForResultsDir(folder.Path, time);
            provider.CreateLogger("x").LogInformation("{Message}", message);
        }

        string[] lines = File.ReadAllLines(Path.Combine(folder.Path, ReferenceLogFormat.LogFileName));
        Assert.Equal(["[1970-01-01 00:00:00] first run", "[1970-01-01 00:00:00] resumed run"], lines); // no colour codes in the file
    }

    [Fact]
    public void RecordsAreUncolouredUnlessColourIsAskedFor()
    {
        var output = new StringWriter();
        using (var provider = new ReferenceFormatLoggerProvider(output, timeProvider: new FixedTime(DateTimeOffset.UnixEpoch, TimeZoneInfo.Utc)))
            provider.CreateLogger("x").LogInformation("plain");

        Assert.Equal("[1970-01-01 00:00:00] plain" + Environment.NewLine, output.ToString());
        Assert.False(ReferenceFormatLoggerProvider.IsTerminalColor(isRedirected: true));
    }
}
