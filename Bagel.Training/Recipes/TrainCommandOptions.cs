using System.Globalization;

namespace Bagel.Training.Recipes;

/// <summary>How <see cref="TrainCommand"/> presents a run (not training flags).</summary>
public sealed record TrainCommandOptions
{
    /// <summary>Draw a progress bar with ETA on stderr. Default false; the console app turns it on when stderr is a
    /// terminal, or when <c>BAGEL_PROGRESS=1</c>.</summary>
    public bool ShowProgress { get; init; }

    /// <summary>Redraw the progress bar at most this often. Default 0.5 s.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(0.5);

    /// <summary>
    /// The process count a launcher started (torchrun's <c>WORLD_SIZE</c>). Default: read from the <c>WORLD_SIZE</c>
    /// environment variable, 1 when unset. Above 1 the command refuses to start: every process would train its own copy
    /// into the same folders.
    /// </summary>
    public int WorldSize { get; init; } = ReadWorldSize();

    private static int ReadWorldSize() =>
        int.TryParse(Environment.GetEnvironmentVariable("WORLD_SIZE"), NumberStyles.None, CultureInfo.InvariantCulture, out int size) && size > 0 ? size : 1;
}
