using System.Globalization;

namespace Bagel.Training.Recipes;

/// <summary>How <see cref="TrainCommand"/> presents a run (not training flags).</summary>
public sealed record TrainCommandOptions
{
    /// <summary>Draw a progress bar with ETA on stderr. Default false; the console app turns it on when stderr is a
    /// terminal, or when <c>BAGEL_PROGRESS=1</c>.</summary>
    public bool ShowProgress { get; init; }

    /// <summary>
    /// Colour the log records' timestamps with ANSI codes (the reference's blue). Default false; the console app turns it
    /// on only when stderr is a terminal and <c>NO_COLOR</c> is unset. <c>log.txt</c> never gets colour codes.
    /// </summary>
    public bool ColorLogs { get; init; }

    /// <summary>
    /// Print each step line bare on stdout as well as in the stamped log record on stderr (the reference's rank 0 does
    /// both). Default true; the console app turns it off when stdout and stderr are both the terminal, where the line
    /// would otherwise appear twice.
    /// </summary>
    public bool BareStepLines { get; init; } = true;

    /// <summary>Redraw the progress bar at most this often. Default 0.5 s.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(0.5);

    /// <summary>
    /// The process count a launcher started: torchrun's <c>WORLD_SIZE</c>, else Open MPI's <c>OMPI_COMM_WORLD_SIZE</c>,
    /// else SLURM's <c>SLURM_NTASKS</c> (see <c>LaunchEnvironment</c>); 1 when none is set. Above 1 the command joins the
    /// job's process group (<see cref="ProcessGroup"/>, or one made from the launcher's variables) and trains
    /// data-parallel; the group's world size must match.
    /// </summary>
    public int WorldSize { get; init; } = ReadWorldSize();

    /// <summary>The process group to train with; default null: made from the launcher's variables when <see cref="WorldSize"/> is above 1.</summary>
    public Bagel.Core.Distributed.IProcessGroup? ProcessGroup { get; init; }

    /// <summary>
    /// The presentation for this process's console: a progress bar and coloured timestamps only on a terminal stderr
    /// (<c>BAGEL_PROGRESS=1</c> forces the bar, <c>0</c> turns it off; <c>NO_COLOR</c> turns colour off), and the bare
    /// step line on stdout only when stdout and stderr are not both the terminal.
    /// </summary>
    public static TrainCommandOptions ForConsole()
    {
        string? progress = Environment.GetEnvironmentVariable("BAGEL_PROGRESS");
        bool showProgress = progress is null ? !Console.IsErrorRedirected : progress is "1" or "true";
        return new TrainCommandOptions
        {
            ShowProgress = showProgress,
            ColorLogs = Logging.ReferenceFormatLoggerProvider.IsTerminalColor(Console.IsErrorRedirected),
            BareStepLines = Console.IsOutputRedirected || Console.IsErrorRedirected,
        };
    }

    private static int ReadWorldSize()
    {
        try
        {
            return Bagel.Core.Distributed.LaunchEnvironment.FromEnvironment().WorldSize;
        }
        catch (Bagel.Core.Distributed.DistributedException)
        {
            // A malformed variable: the command reports it when it joins the group.
            return int.TryParse(Environment.GetEnvironmentVariable("WORLD_SIZE"), NumberStyles.None, CultureInfo.InvariantCulture, out int size) && size > 0 ? size : 2;
        }
    }
}
