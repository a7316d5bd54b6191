using Microsoft.Extensions.Logging;

namespace Bagel.Core.Logging;

/// <summary>
/// The log messages Bagel.Core emits, source-generated so that a disabled level costs nothing. Event ids 1000–1099
/// belong to Bagel.Core.
/// </summary>
public static partial class CoreLog
{
    /// <summary>Compute options took effect.</summary>
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information,
        Message = "Compute: device {Device}, parameter dtype {DType}, {CpuThreads} intra-op thread(s), {InteropThreads} inter-op thread(s)")]
    public static partial void ComputeApplied(ILogger logger, string device, string dtype, int cpuThreads, int interopThreads);

    /// <summary>A reduced-precision dtype was chosen for the CPU.</summary>
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information,
        Message = "Parameter dtype {DType} on the CPU: allowed, but usually slower than float32 (useful to reproduce the reference's bf16 rounding)")]
    public static partial void ReducedPrecisionOnCpu(ILogger logger, string dtype);

    /// <summary>torch's global generator was seeded.</summary>
    [LoggerMessage(EventId = 1010, Level = LogLevel.Debug, Message = "Seeded torch's global generator with {Seed} (rank {Rank})")]
    public static partial void TorchSeeded(ILogger logger, long seed, int rank);

    /// <summary>A data status file was written.</summary>
    [LoggerMessage(EventId = 1020, Level = LogLevel.Information, Message = "Wrote data status for {RankCount} rank(s) to {Path}")]
    public static partial void DataStatusWritten(ILogger logger, string path, int rankCount);

    /// <summary>A data status file was read.</summary>
    [LoggerMessage(EventId = 1021, Level = LogLevel.Information,
        Message = "Read data status from {Path}: world size {WorldSize}, {NumWorkers} worker(s) per rank")]
    public static partial void DataStatusRead(ILogger logger, string path, int worldSize, int numWorkers);

    /// <summary>A resume continues with a different world size or worker count, so it is not exact.</summary>
    [LoggerMessage(EventId = 1022, Level = LogLevel.Warning,
        Message = "Data status was saved with world size {SavedWorldSize} and {SavedNumWorkers} worker(s); this run has {WorldSize} and {NumWorkers}. " +
                  "Resuming inexactly: positions are kept where rank and worker ids still exist; buffered and prefetched samples and RNG states are dropped")]
    public static partial void DataStatusInexactResume(ILogger logger, int savedWorldSize, int savedNumWorkers, int worldSize, int numWorkers);
}
