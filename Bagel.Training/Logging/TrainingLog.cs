using Microsoft.Extensions.Logging;

namespace Bagel.Training.Logging;

/// <summary>The training loop's log messages (source-generated).</summary>
public static partial class TrainingLog
{
    /// <summary>Logs a step line from <see cref="TrainLogLine"/> at Information.</summary>
    [LoggerMessage(EventId = 1, EventName = "TrainStep", Level = LogLevel.Information, Message = "{Line}")]
    public static partial void Step(ILogger logger, string line);

    /// <summary>Logs a step skipped for a non-finite loss or gradient norm.</summary>
    [LoggerMessage(EventId = 2, EventName = "NonFiniteStep", Level = LogLevel.Warning,
        Message = "Step {Step} skipped: loss {Loss}, gradient norm {GradNorm} ({Consecutive} in a row, {Total} in all).")]
    public static partial void NonFiniteStep(ILogger logger, long step, double loss, double gradNorm, int consecutive, long total);
}
