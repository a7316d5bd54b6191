using Bagel.Tests.Core.StateDicts;
using Bagel.Training.Logging;
using Bagel.Training.Metrics;
using Microsoft.Extensions.Logging;

namespace Bagel.Tests.Training.Logging;

public sealed class TrainLogLineTests
{
    [Fact]
    public void TheReferencePartMatchesItsFormatCharacterForCharacter()
    {
        string line = TrainLogLine.FormatReference(123, [("mse", 0.40634), ("ce", 0.55036)], new ThroughputReportView(0.444, 35_204.9, 0.31249));

        Assert.Equal("(step=0000123) Train Loss mse: 0.4063, Train Loss ce: 0.5504, Train Steps/Sec: 0.44, Tokens/Sec: 35.20k, MFU: 31.2%, ", line);
    }

    [Fact]
    public void TheFullLineBeginsWithTheReferencePartAndAddsOurs()
    {
        string line = TrainLogLine.Format(0, 0.4063, 0.5504, new ThroughputReportView(0.01, 1234.5, 0), learningRate: 1e-4, gradNorm: 0.98765, skippedSamples: 3);

        Assert.StartsWith("(step=0000000) Train Loss mse: 0.4063, Train Loss ce: 0.5504, Train Steps/Sec: 0.01, Tokens/Sec: 1.23k, LR: 1.000e-04, ", line, StringComparison.Ordinal);
        Assert.EndsWith("LR: 1.000e-04, Grad Norm: 0.9877, Skipped Samples: 3, ", line, StringComparison.Ordinal);
    }

    [Fact]
    public void StepLinesGoThroughTheLoggerUnchanged()
    {
        var logger = new ListLogger();
        const string line = "(step=0000001) Train Loss mse: 0.1000, ";

        TrainingLog.Step(logger, line);

        Assert.Equal((LogLevel.Information, line), logger.Entries.Single());
    }
}
