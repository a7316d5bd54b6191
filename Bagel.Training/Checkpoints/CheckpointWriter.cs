using Microsoft.Extensions.Logging;

namespace Bagel.Training.Checkpoints;

/// <summary>
/// Writes checkpoint folders atomically: every part goes into a temp folder inside <c>checkpoint_dir</c> (each file
/// flushed to disk), <c>train_state.json</c> last, then the folder is renamed to <c>&lt;step:07d&gt;</c>. A crash mid-save
/// leaves only a temp folder, which discovery ignores and the next save removes; the previous checkpoint stays intact.
/// </summary>
public sealed partial class CheckpointWriter
{
    private readonly CheckpointOptions _options;
    private readonly ILogger? _logger;

    /// <summary>
    /// Test seam, process-wide: called with the step and the part's file name after each part is written into the temp
    /// folder. The SIGKILL tests pause a child process here to kill it in the middle of a save; null in normal runs.
    /// </summary>
    internal static Action<long, string>? PartWrittenHook { get; set; }

    /// <summary>Creates the writer.</summary>
    public CheckpointWriter(CheckpointOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.CheckpointDir);
        if (options.KeepLast is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.KeepLast, "KeepLast must be at least 1 (or null to keep all).");
        _options = options;
        _logger = logger;
    }

    /// <summary>
    /// Saves <paramref name="parts"/> and <paramref name="state"/> as the checkpoint of
    /// <see cref="TrainState.CompletedSteps"/>; replaces an existing folder of that step; applies retention. Returns the
    /// folder.
    /// </summary>
    public CheckpointInfo Save(TrainState state, IEnumerable<CheckpointPart> parts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(parts);
        string root = Path.GetFullPath(_options.CheckpointDir);
        Directory.CreateDirectory(root);
        CheckpointCatalog.CleanTemporary(root, _logger);
        string name = CheckpointLayout.FolderName(state.CompletedSteps);
        string temp = Path.Combine(root, $"{CheckpointLayout.TemporaryPrefix}{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            var names = new HashSet<string>(StringComparer.Ordinal) { CheckpointLayout.TrainStateFileName };
            foreach (CheckpointPart part in parts)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!names.Add(part.FileName)) throw new ArgumentException($"Two checkpoint parts write '{part.FileName}'.", nameof(parts));
                part.Write(Path.Combine(temp, part.FileName), cancellationToken);
                PartWrittenHook?.Invoke(state.CompletedSteps, part.FileName);
            }
            state.Write(Path.Combine(temp, CheckpointLayout.TrainStateFileName));
            CheckpointFiles.FsyncDirectory(temp);
            string final = Path.Combine(root, name);
            if (Directory.Exists(final))
            {
                // Same step saved again (e.g. the final save right after a periodic one): move the old one aside first,
                // so that a crash in between still leaves one complete folder or a recoverable temp.
                string old = Path.Combine(root, $"{CheckpointLayout.TemporaryPrefix}{name}-replaced-{Guid.NewGuid():N}");
                Directory.Move(final, old);
                Directory.Move(temp, final);
                Directory.Delete(old, recursive: true);
            }
            else Directory.Move(temp, final);
            CheckpointFiles.FsyncDirectory(root);
            if (_logger is not null) LogSaved(_logger, state.CompletedSteps, final);
            ApplyRetention(root, state.CompletedSteps);
            return new CheckpointInfo(state.CompletedSteps, final);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    private void ApplyRetention(string root, long justSaved)
    {
        if (_options.KeepLast is not int keep) return;
        IReadOnlyList<CheckpointInfo> all = CheckpointCatalog.List(root);
        foreach (CheckpointInfo old in all.Take(Math.Max(0, all.Count - keep)))
        {
            if (old.CompletedSteps == justSaved) continue;
            Directory.Delete(old.Folder, recursive: true);
            if (_logger is not null) LogRemoved(_logger, old.Folder, keep);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Saved checkpoint of {Steps} completed steps to {Folder}.")]
    private static partial void LogSaved(ILogger logger, long steps, string folder);

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed old checkpoint {Folder} (keeping the last {Keep}).")]
    private static partial void LogRemoved(ILogger logger, string folder, int keep);
}
