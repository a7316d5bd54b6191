using System.Globalization;
using System.Text;

namespace Bagel.Training.Recipes;

/// <summary>
/// The console progress line, as pure formatting: <c>[#######-------]  350/1000 steps  35.0%  2.50 steps/s  ETA 00:04:20</c>.
/// The speed and ETA count only the steps of this process (a resumed run starts its clock at the resumed step).
/// </summary>
public static class ProgressBarFormat
{
    /// <summary>Characters between the brackets. Default for <see cref="Format"/>: 30.</summary>
    public const int DefaultBarWidth = 30;

    /// <summary>The remaining time at the speed so far: <c>(total − completed) · elapsed / stepsThisRun</c>; null before the first step.</summary>
    /// <param name="completed">Steps completed in all (resumed ones included).</param>
    /// <param name="total"><c>total_steps</c>.</param>
    /// <param name="stepsThisRun">Steps this process has completed.</param>
    /// <param name="elapsed">Time since this process started training.</param>
    public static TimeSpan? EstimateRemaining(long completed, long total, long stepsThisRun, TimeSpan elapsed)
    {
        if (stepsThisRun <= 0 || elapsed <= TimeSpan.Zero) return null;
        long remaining = Math.Max(0, total - completed);
        return TimeSpan.FromTicks((long)Math.Round(elapsed.Ticks * (double)remaining / stepsThisRun));
    }

    /// <summary>Formats the line (no carriage return or newline).</summary>
    /// <param name="completed">Steps completed in all.</param>
    /// <param name="total"><c>total_steps</c> (at least 1).</param>
    /// <param name="stepsThisRun">Steps this process has completed.</param>
    /// <param name="elapsed">Time since this process started training.</param>
    /// <param name="barWidth">Characters between the brackets.</param>
    public static string Format(long completed, long total, long stepsThisRun, TimeSpan elapsed, int barWidth = DefaultBarWidth)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(total, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(barWidth, 1);
        double fraction = Math.Clamp((double)completed / total, 0, 1);
        int filled = (int)Math.Floor(fraction * barWidth);
        var line = new StringBuilder(barWidth + 64);
        line.Append('[').Append('#', filled).Append('-', barWidth - filled).Append(']');
        string width = total.ToString(CultureInfo.InvariantCulture);
        line.Append(CultureInfo.InvariantCulture, $" {completed.ToString(CultureInfo.InvariantCulture).PadLeft(width.Length)}/{width} steps");
        line.Append(CultureInfo.InvariantCulture, $" {fraction * 100,5:F1}%");
        TimeSpan? eta = EstimateRemaining(completed, total, stepsThisRun, elapsed);
        if (eta is { } left)
        {
            line.Append(CultureInfo.InvariantCulture, $"  {stepsThisRun / elapsed.TotalSeconds:F2} steps/s");
            line.Append("  ETA ").Append(Duration(left));
        }
        else line.Append("  ETA --:--:--");
        return line.ToString();
    }

    /// <summary><c>hh:mm:ss</c>, with days as <c>Nd hh:mm:ss</c>.</summary>
    public static string Duration(TimeSpan span)
    {
        if (span < TimeSpan.Zero) span = TimeSpan.Zero;
        string clock = string.Create(CultureInfo.InvariantCulture, $"{span.Hours:D2}:{span.Minutes:D2}:{span.Seconds:D2}");
        return span.Days > 0 ? string.Create(CultureInfo.InvariantCulture, $"{span.Days}d {clock}") : clock;
    }
}
