using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.Logging;

/// <summary>
/// The logging a <see cref="Loop.TrainerBuilder"/> uses when no <c>UseLogger</c> was called: Information and above to
/// stderr in the reference's line format, with the timestamp's colour codes only when stderr is a terminal.
/// </summary>
internal static partial class DefaultConsoleLogging
{
    /// <summary>A logger factory writing to stderr (the caller disposes it).</summary>
    public static ILoggerFactory Create()
    {
        TextWriter writer = Console.IsErrorRedirected ? new AnsiFreeWriter(Console.Error) : Console.Error;
        return LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Information).AddProvider(new ReferenceFormatLoggerProvider(writer)));
    }

    /// <summary>ANSI colour and style sequences (<c>ESC [ … m</c>).</summary>
    [GeneratedRegex("\u001b\\[[0-9;]*m", RegexOptions.CultureInvariant)]
    private static partial Regex AnsiStyle();

    /// <summary>Passes text on without colour codes, for a redirected stream.</summary>
    internal sealed class AnsiFreeWriter(TextWriter inner) : TextWriter
    {
        public override Encoding Encoding => inner.Encoding;

        public override void Write(char value) => inner.Write(value);

        public override void Write(string? value) => inner.Write(Strip(value));

        public override void WriteLine(string? value) => inner.WriteLine(Strip(value));

        public override void Flush() => inner.Flush();

        private static string? Strip(string? value) => value is null ? null : AnsiStyle().Replace(value, "");
    }
}
