using Bagel.Training.Logging;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.Recipes;

/// <summary>
/// Writes only the training loop's step lines (<see cref="TrainingLog.Step"/>), bare, without the time-stamp prefix:
/// the reference's rank 0 <c>print</c>s each step line to stdout besides logging it (training.md 5.6).
/// </summary>
public sealed class BareStepLineLoggerProvider : ILoggerProvider
{
    /// <summary>The event name of <see cref="TrainingLog.Step"/>.</summary>
    public const string StepEventName = "TrainStep";

    private readonly TextWriter _writer;
    private readonly Lock _gate = new();

    /// <summary>Writes to <paramref name="writer"/> (not disposed by the provider).</summary>
    public BareStepLineLoggerProvider(TextWriter writer) => _writer = writer ?? throw new ArgumentNullException(nameof(writer));

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new StepLogger(this);

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate) _writer.Flush();
    }

    private void Write(string line)
    {
        lock (_gate)
        {
            _writer.WriteLine(line);
            _writer.Flush();
        }
    }

    private sealed class StepLogger(BareStepLineLoggerProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel) && eventId.Name == StepEventName) owner.Write(formatter(state, exception));
        }
    }
}

/// <summary>Adds <see cref="BareStepLineLoggerProvider"/> to a logging builder.</summary>
public static class BareStepLineLoggingExtensions
{
    /// <summary>Adds the bare step lines written to <paramref name="writer"/>; a null writer adds nothing (the lines are off).</summary>
    public static ILoggingBuilder AddBareStepLines(this ILoggingBuilder builder, TextWriter? writer)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return writer is null ? builder : builder.AddProvider(new BareStepLineLoggerProvider(writer));
    }
}
