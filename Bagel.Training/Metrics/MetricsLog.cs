using Microsoft.Extensions.Logging;

namespace Bagel.Training.Metrics;

/// <summary>Source-generated log messages of the metric sinks.</summary>
internal static partial class MetricsLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "{File}: kept {Kept} record(s) of steps before {Step}; dropped {Dropped} of step {Step} or later (the run trains them again).")]
    public static partial void Discarded(ILogger logger, string file, long kept, long dropped, long step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{File}: dropped {Count} damaged record(s) (a half-written last line or record from a killed run, or lines that are not JSON objects with a step).")]
    public static partial void DroppedDamaged(ILogger logger, string file, long count);
}
