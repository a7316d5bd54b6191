using System.Globalization;
using System.Text;
using Bagel.Core.Metrics;

namespace Bagel.Training.Logging;

/// <summary>
/// The reference's step log line (training.md 5.6), character for character:
/// <c>(step=0000123) Train Loss mse: 0.4063, Train Loss ce: 0.5504, Train Steps/Sec: 0.44, Tokens/Sec: 35.20k, MFU: 31.2%, </c>
/// (losses with 4 decimals in the order given, tokens/s in thousands with a <c>k</c>, MFU in percent, every item
/// ending in <c>", "</c>), then ours: <c>LR: 1.000e-04, Grad Norm: 0.1234, Skipped Samples: 0, </c>. The MFU item is
/// left out when no figure is known (<see cref="ThroughputReportView.Mfu"/> is 0: no peak TFLOP/s for the device, as on
/// a CPU, or no FLOP count for the model), rather than printing a meaningless <c>MFU: 0.0%</c>.
/// </summary>
public static class TrainLogLine
{
    /// <summary>Digits of the step number (the reference's <c>{curr_step:07d}</c>).</summary>
    public const int StepDigits = 7;

    /// <summary>The reference's part of the line.</summary>
    /// <param name="step">0-based step index (the reference's <c>curr_step</c>).</param>
    /// <param name="losses">Losses in log order, normally <c>mse</c> then <c>ce</c>.</param>
    /// <param name="throughput">Speed figures of the window.</param>
    public static string FormatReference(long step, IEnumerable<(string Name, double Value)> losses, ThroughputReportView throughput)
    {
        ArgumentNullException.ThrowIfNull(losses);
        var line = new StringBuilder();
        line.Append("(step=").Append(step.ToString($"D{StepDigits}", CultureInfo.InvariantCulture)).Append(") ");
        foreach ((string name, double value) in losses)
            line.Append("Train Loss ").Append(name).Append(": ").Append(Fixed(value, 4)).Append(", ");
        line.Append("Train Steps/Sec: ").Append(Fixed(throughput.StepsPerSec, 2)).Append(", ");
        line.Append("Tokens/Sec: ").Append(Fixed(throughput.TokensPerSec / 1000.0, 2)).Append("k, ");
        if (throughput.Mfu > 0) line.Append("MFU: ").Append(Fixed(throughput.Mfu * 100.0, 1)).Append("%, ");
        return line.ToString();
    }

    /// <summary>The whole line: the reference's part, then learning rate, gradient norm and skipped samples.</summary>
    public static string Format(long step, double mse, double ce, ThroughputReportView throughput, double learningRate, double gradNorm, long skippedSamples) =>
        FormatReference(step, [(ReferenceMetricNames.Mse, mse), (ReferenceMetricNames.Ce, ce)], throughput)
        + $"LR: {learningRate.ToString("0.000e+00", CultureInfo.InvariantCulture)}, "
        + $"Grad Norm: {Fixed(gradNorm, 4)}, Skipped Samples: {skippedSamples.ToString(CultureInfo.InvariantCulture)}, ";

    private static string Fixed(double value, int decimals) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}

/// <summary>The three speed figures the log line shows.</summary>
/// <param name="StepsPerSec">Steps per second of the window.</param>
/// <param name="TokensPerSec">Tokens per second of the window.</param>
/// <param name="Mfu">Model FLOPs utilisation as a fraction; 0 when unknown (the log line then leaves it out).</param>
public readonly record struct ThroughputReportView(double StepsPerSec, double TokensPerSec, double Mfu)
{
    /// <summary>The view of a full <see cref="Metrics.ThroughputReport"/>.</summary>
    public static implicit operator ThroughputReportView(Metrics.ThroughputReport report) =>
        new(report.StepsPerSec, report.TokensPerSec, report.Mfu);
}
