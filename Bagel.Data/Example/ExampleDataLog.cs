using Microsoft.Extensions.Logging;

namespace Bagel.Data.Example;

/// <summary>Source-generated log messages of the example-data writer.</summary>
internal static partial class ExampleDataLog
{
    [LoggerMessage(EventId = 2101, Level = LogLevel.Information, Message = "Writing example data to {Folder} (seed {Seed}, {Files} files)")]
    public static partial void Started(ILogger logger, string folder, int seed, int files);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Information, Message = "Wrote example data to {Folder}: {Files} files, {Megabytes:F1} MiB in {Seconds:F1} s")]
    public static partial void Finished(ILogger logger, string folder, int files, double megabytes, double seconds);
}
