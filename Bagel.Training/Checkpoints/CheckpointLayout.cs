using System.Globalization;
using Bagel.Core.DataStatus;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Bagel.Training.Schedules;

namespace Bagel.Training.Checkpoints;

/// <summary>
/// Names inside <c>checkpoint_dir</c>. A folder <c>&lt;step:07d&gt;</c> holds the state after that many completed
/// optimizer steps. The reference's files (<c>model.safetensors</c>, <c>ema.safetensors</c>) keep its names and layout;
/// optimizer, scheduler and data status use our formats (the reference pickles <c>.pt</c> files), and
/// <see cref="TrainStateFileName"/>, written last, marks the folder complete.
/// </summary>
public static class CheckpointLayout
{
    /// <summary>Model weights, the reference's name and layout.</summary>
    public const string ModelFileName = "model.safetensors";

    /// <summary>EMA weights, the reference's name and layout.</summary>
    public const string EmaFileName = EmaModel.FileName;

    /// <summary>AdamW state (ours; the reference writes <c>optimizer.*-of-*.pt</c>).</summary>
    public const string OptimizerFileName = AdamWStateFile.FileName;

    /// <summary>Scheduler state (ours; the reference writes <c>scheduler.pt</c>).</summary>
    public const string SchedulerFileName = LearningRateScheduler.FileName;

    /// <summary>Data status (ours; the reference writes <c>data_status.pt</c>).</summary>
    public const string DataStatusFileName = DataStatusFile.FileName;

    /// <summary>Every RNG state (the reference saves none).</summary>
    public const string RngStateFileName = "rng_state.json";

    /// <summary>Resolved configuration and package versions.</summary>
    public const string RunInfoFileName = "run_info.json";

    /// <summary>Completed steps and counters; written last, so its presence marks a complete checkpoint.</summary>
    public const string TrainStateFileName = "train_state.json";

    /// <summary>Prefix of a folder being written; such folders are never resumed from and are cleaned up.</summary>
    public const string TemporaryPrefix = ".tmp-";

    /// <summary>Digits of a step folder name (the reference's <c>{step:07d}</c>).</summary>
    public const int StepDigits = 7;

    /// <summary>The folder name for <paramref name="completedSteps"/>: <c>0000123</c>.</summary>
    public static string FolderName(long completedSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(completedSteps);
        return completedSteps.ToString($"D{StepDigits}", CultureInfo.InvariantCulture);
    }

    /// <summary>Parses a step folder name: digits only (any count, as the reference's <c>int(name)</c>).</summary>
    public static bool TryParseFolderName(string name, out long step)
    {
        step = 0;
        return name.Length > 0 && name.All(char.IsAsciiDigit)
            && long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out step);
    }
}
