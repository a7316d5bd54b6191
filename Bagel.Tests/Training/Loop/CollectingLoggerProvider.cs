using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Bagel.Tests.Training.Loop;

/// <summary>A logger factory that keeps every formatted log message, for assertions on the loop's lines.</summary>
internal sealed class CollectingLoggerProvider : ILoggerFactory
{
    public ConcurrentQueue<string> Messages { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Collector(Messages);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("This test factory only collects.");

    public void Dispose()
    {
    }

    private sealed class Collector(ConcurrentQueue<string> messages) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            messages.Enqueue(formatter(state, exception));
    }
}
