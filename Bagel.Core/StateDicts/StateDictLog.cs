using Microsoft.Extensions.Logging;

namespace Bagel.Core.StateDicts;

/// <summary>Source-generated log messages of the state-dict loader and saver.</summary>
internal static partial class StateDictLog
{
    [LoggerMessage(EventId = 4101, Level = LogLevel.Warning,
        Message = "Non-strict load from {Source}: loaded {Loaded}, missing {MissingCount} [{Missing}], unexpected {UnexpectedCount} [{Unexpected}], misshapen {MisshapenCount} [{Misshapen}]")]
    public static partial void PartialLoad(ILogger logger, string source, int loaded, int missingCount, string missing,
        int unexpectedCount, string unexpected, int misshapenCount, string misshapen);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Information, Message = "Loaded {Loaded} tensors from {Source} ({Ignored} ignored by the key map)")]
    public static partial void Loaded(ILogger logger, int loaded, string source, int ignored);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Information, Message = "Saved {Count} tensors to {Path}")]
    public static partial void Saved(ILogger logger, int count, string path);
}
