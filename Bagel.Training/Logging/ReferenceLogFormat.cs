using System.Globalization;

namespace Bagel.Training.Logging;

/// <summary>
/// The reference's log record format (<c>train_utils.create_logger</c>): <c>[ESC[34m2026-01-02 03:04:05ESC[0m] message</c>
/// — local time to the second, wrapped in ANSI blue, inside square brackets; the escape codes also go to log.txt.
/// </summary>
public static class ReferenceLogFormat
{
    /// <summary>ANSI "blue foreground" that starts the timestamp.</summary>
    public const string Blue = "\u001b[34m";

    /// <summary>ANSI "reset" that ends it.</summary>
    public const string Reset = "\u001b[0m";

    /// <summary>File name of the reference's log in <c>results_dir</c>.</summary>
    public const string LogFileName = "log.txt";

    /// <summary>One record: the bracketed blue timestamp, a space, the message.</summary>
    public static string FormatLine(DateTimeOffset localTime, string message) =>
        $"[{Blue}{localTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}{Reset}] {message}";
}
