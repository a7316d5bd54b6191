using System.Collections.Concurrent;
using Bagel.Core.Randomness;
using Bagel.Data.Diagnostics;
using Bagel.Data.Packing;
using Bagel.Data.Samples;
using Bagel.Data.Sources;
using Microsoft.Extensions.Logging;

namespace Bagel.Tests.Data.Pipeline.BadInput;

/// <summary>
/// Reads a known number of records through a source and a builder, in sorted unit order (the unit shuffle is the
/// identity and the single worker reads its slice unreversed), so a test knows exactly which records one pass holds.
/// </summary>
internal static class BadInputHarness
{
    /// <summary>The whole rank slice, unreversed, as worker 0.</summary>
    public static readonly WorkerSlice SortedSlice = new(0, 1, 0, 0);

    /// <summary>A "shuffle" that swaps nothing (Fisher-Yates with j = i), so units stay in sorted order.</summary>
    public static int Identity(int n) => n - 1;

    /// <summary>Reads <paramref name="records"/> raw records and builds each; returns the origins of those that became samples.</summary>
    public static async Task<List<string>> BuiltOriginsAsync(RawSampleSource source, ISampleBuilder builder, int records, DataSkipCounters skips)
    {
        var built = new List<string>();
        int read = 0;
        await foreach (RawSample raw in source.ReadAsync(SortedSlice, Identity, null, skips, TestContext.Current.CancellationToken))
        {
            using var random = new SeededRandomSource((ulong)read + 1);
            using (PackableSample? sample = builder.Build(raw, random))
            {
                if (sample is not null) built.Add(sample.Origin);
            }
            if (++read == records) break;
        }
        return built;
    }
}

/// <summary>Keeps every formatted log message (thread-safe), so tests can check what a warning names.</summary>
internal sealed class CapturingLogger : ILogger
{
    public ConcurrentQueue<string> Messages { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Messages.Enqueue($"{logLevel}: {formatter(state, exception)}");
}
