using Microsoft.Extensions.Logging;

namespace Bagel.Training.Logging;

/// <summary>
/// An <see cref="ILoggerProvider"/> that writes records in <see cref="ReferenceLogFormat"/> to a text writer, as the
/// reference's handlers do for stderr and <c>&lt;results_dir&gt;/log.txt</c>. Records below <see cref="MinimumLevel"/>
/// (default Information, the reference's level) are dropped; exceptions follow their message on the next lines.
/// The timestamp is coloured only when asked (<see cref="Color"/>: pass true for a terminal); files never get ANSI codes.
/// </summary>
public sealed class ReferenceFormatLoggerProvider : ILoggerProvider
{
    private readonly TextWriter _writer;
    private readonly bool _ownsWriter;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();

    /// <summary>Writes to <paramref name="writer"/>; <paramref name="ownsWriter"/> disposes it with the provider.</summary>
    /// <param name="writer">Receives the records.</param>
    /// <param name="ownsWriter">Dispose <paramref name="writer"/> with the provider.</param>
    /// <param name="timeProvider">The clock (default: the system's).</param>
    /// <param name="minimumLevel">The lowest level written (default Information).</param>
    /// <param name="color">Colour the timestamp with ANSI codes: only for a terminal (see <see cref="IsTerminalColor"/>). Default false.</param>
    public ReferenceFormatLoggerProvider(TextWriter writer, bool ownsWriter = false, TimeProvider? timeProvider = null, LogLevel minimumLevel = LogLevel.Information,
        bool color = false)
    {
        Color = color;
        _writer = writer ?? throw new ArgumentNullException(nameof(writer));
        _ownsWriter = ownsWriter;
        _time = timeProvider ?? TimeProvider.System;
        MinimumLevel = minimumLevel;
    }

    /// <summary>The lowest level written. Default Information.</summary>
    public LogLevel MinimumLevel { get; }

    /// <summary>Whether the timestamp is wrapped in ANSI blue. Default false.</summary>
    public bool Color { get; }

    /// <summary>
    /// True when records for a stream that <paramref name="isRedirected"/> says is (not) redirected should be coloured:
    /// only a terminal, and not when the <c>NO_COLOR</c> environment variable is set to anything.
    /// </summary>
    public static bool IsTerminalColor(bool isRedirected) =>
        !isRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));

    /// <summary>Appends to <c>&lt;resultsDir&gt;/log.txt</c> (created with its folder), flushing each record, without ANSI codes.</summary>
    public static ReferenceFormatLoggerProvider ForResultsDir(string resultsDir, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(resultsDir);
        Directory.CreateDirectory(resultsDir);
        var stream = new FileStream(Path.Combine(resultsDir, ReferenceLogFormat.LogFileName), FileMode.Append, FileAccess.Write, FileShare.Read);
        return new ReferenceFormatLoggerProvider(new StreamWriter(stream) { AutoFlush = true }, ownsWriter: true, timeProvider);
    }

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new Writer(this);

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            _writer.Flush();
            if (_ownsWriter) _writer.Dispose();
        }
    }

    private void Write(string message, Exception? exception)
    {
        DateTimeOffset local = TimeZoneInfo.ConvertTime(_time.GetUtcNow(), _time.LocalTimeZone);
        string line = ReferenceLogFormat.FormatLine(local, message, Color);
        lock (_gate)
        {
            _writer.WriteLine(line);
            if (exception is not null) _writer.WriteLine(exception.ToString());
            _writer.Flush();
        }
    }

    private sealed class Writer(ReferenceFormatLoggerProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= owner.MinimumLevel;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) owner.Write(formatter(state, exception), exception);
        }
    }
}
