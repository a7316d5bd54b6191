using Bagel.Core.Devices;
using Bagel.Core.Logging;
using Bagel.Tests.Core.Randomness;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bagel.Tests.Core.Logging;

[Collection(nameof(TorchGlobalRandomTests))] // ComputeOptions.Apply touches process-wide torch settings
public sealed class BagelLoggingTests
{
    [Fact]
    public void NullFactoryGivesANoOpLogger()
    {
        Assert.Same(NullLogger<BagelLoggingTests>.Instance, BagelLogging.CreateLogger<BagelLoggingTests>(null));
        Assert.Same(NullLogger.Instance, BagelLogging.CreateLogger(null, "Bagel.Core"));
    }

    [Fact]
    public void FactoryLoggersReceiveCoreMessages()
    {
        using var factory = new RecordingFactory();
        ILogger logger = BagelLogging.CreateLogger(factory, "Bagel.Core");

        new ComputeOptions { DType = "bf16" }.Apply(logger);

        Assert.Contains(factory.Lines, l => l.StartsWith("1000 Compute: device cpu, parameter dtype bfloat16", StringComparison.Ordinal));
        Assert.Contains(factory.Lines, l => l.StartsWith("1001 Parameter dtype bfloat16 on the CPU", StringComparison.Ordinal));
    }

    private sealed class RecordingFactory : ILoggerFactory
    {
        public List<string> Lines { get; } = [];

        public ILogger CreateLogger(string categoryName) => new RecordingLogger(Lines);

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public void Dispose() { }
    }

    private sealed class RecordingLogger(List<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (lines) lines.Add($"{eventId.Id} {formatter(state, exception)}");
        }
    }
}
