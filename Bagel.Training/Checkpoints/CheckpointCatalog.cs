using Microsoft.Extensions.Logging;

namespace Bagel.Training.Checkpoints;

/// <summary>
/// Finds checkpoints in <c>checkpoint_dir</c>. Only numeric folders with a <c>train_state.json</c> count as complete;
/// non-numeric folders (the reference would crash on them), temp folders and incomplete numeric folders are ignored
/// with a log line.
/// </summary>
public static partial class CheckpointCatalog
{
    /// <summary>Every complete checkpoint, oldest first.</summary>
    public static IReadOnlyList<CheckpointInfo> List(string checkpointDir, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(checkpointDir);
        var found = new List<CheckpointInfo>();
        if (!Directory.Exists(checkpointDir)) return found;
        foreach (string folder in Directory.EnumerateDirectories(checkpointDir))
        {
            string name = Path.GetFileName(folder);
            if (name.StartsWith(CheckpointLayout.TemporaryPrefix, StringComparison.Ordinal))
            {
                if (logger is not null) LogTemporary(logger, folder);
            }
            else if (!CheckpointLayout.TryParseFolderName(name, out long step))
            {
                if (logger is not null) LogNotNumeric(logger, folder);
            }
            else if (!File.Exists(Path.Combine(folder, CheckpointLayout.TrainStateFileName)))
            {
                if (logger is not null) LogIncomplete(logger, folder, CheckpointLayout.TrainStateFileName);
            }
            else found.Add(new CheckpointInfo(step, Path.GetFullPath(folder)));
        }
        found.Sort((a, b) => a.CompletedSteps.CompareTo(b.CompletedSteps));
        return found;
    }

    /// <summary>The complete checkpoint with the most completed steps, or null when there is none.</summary>
    public static CheckpointInfo? FindLatest(string checkpointDir, ILogger? logger = null) =>
        List(checkpointDir, logger).LastOrDefault();

    /// <summary>Deletes temp folders left by interrupted saves; returns how many were removed.</summary>
    public static int CleanTemporary(string checkpointDir, ILogger? logger = null)
    {
        if (!Directory.Exists(checkpointDir)) return 0;
        int removed = 0;
        foreach (string folder in Directory.EnumerateDirectories(checkpointDir, CheckpointLayout.TemporaryPrefix + "*"))
        {
            Directory.Delete(folder, recursive: true);
            removed++;
            if (logger is not null) LogRemovedTemporary(logger, folder);
        }
        return removed;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Ignoring {Folder}: a checkpoint save that did not finish (it will be cleaned up).")]
    private static partial void LogTemporary(ILogger logger, string folder);

    [LoggerMessage(Level = LogLevel.Information, Message = "Ignoring {Folder}: its name is not a step number.")]
    private static partial void LogNotNumeric(ILogger logger, string folder);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ignoring {Folder}: it has no {Marker}, so it is not a complete Bagel.NET checkpoint (pass it as resume_from with resume_model_only to load only its weights).")]
    private static partial void LogIncomplete(ILogger logger, string folder, string marker);

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed {Folder}, left by an interrupted checkpoint save.")]
    private static partial void LogRemovedTemporary(ILogger logger, string folder);
}
