using Microsoft.Extensions.Logging;

namespace Bagel.Data.Diagnostics;

/// <summary>Source-generated log messages of Bagel.Data.</summary>
internal static partial class DataLog
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning,
        Message = "Skipped a {Group} record ({Reason}) at {Origin}: {Detail} (skips of this kind so far: {Count})")]
    public static partial void SkippedRecord(ILogger logger, string group, SkipReason reason, string origin, string detail, long count);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Debug, Message = "{Group} repeat in rank-{Rank} worker-{Worker} (passes of this group so far: {Passes})")]
    public static partial void SourceWrapped(ILogger logger, string group, int rank, int worker, long passes);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Debug, Message = "Skipped a {Group} record ({Reason}) at {Origin} again on a later pass (warned once).")]
    public static partial void SkippedAgain(ILogger logger, string group, SkipReason reason, string origin);
}
