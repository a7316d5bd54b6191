using System.Globalization;

namespace Bagel.Training.Logging;

/// <summary>
/// The reference's log record format (<c>train_utils.create_logger</c>): <c>[ESC[34m2026-01-02 03:04:05ESC[0m] message</c>
/// — local time to the second, wrapped in ANSI blue, inside square brackets. The reference also writes the escape codes
/// into log.txt and into redirected streams; Bagel.NET colours only a terminal (<c>color: false</c> gives
/// <c>[2026-01-02 03:04:05] message</c>).
/// </summary>
public static class ReferenceLogFormat
{
    /// <summary>ANSI "blue foreground" that starts the timestamp.</summary>
    public const string Blue = "\u001b[34m";

    /// <summary>ANSI "reset" that ends it.</summary>
    public const string Reset = "\u001b[0m";

    /// <summary>File name of the reference's log in <c>results_dir</c>.</summary>
    public const string LogFileName = "log.txt";

    /// <summary>One record: the bracketed timestamp (blue when <paramref name="color"/>), a space, the message.</summary>
    /// <param name="localTime">The record's local time.</param>
    /// <param name="message">The message.</param>
    /// <param name="color">Wrap the timestamp in ANSI blue (for a terminal only). Default true, as the reference.</param>
    public static string FormatLine(DateTimeOffset localTime, string message, bool color = true)
    {
        string stamp = localTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        return color ? $"[{Blue}{stamp}{Reset}] {message}" : $"[{stamp}] {message}";
    }
}
