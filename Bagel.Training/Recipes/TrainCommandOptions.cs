namespace Bagel.Training.Recipes;

/// <summary>How <see cref="TrainCommand"/> presents a run (not training flags).</summary>
public sealed record TrainCommandOptions
{
    /// <summary>Draw a progress bar with ETA on stderr. Default false; the console app turns it on when stderr is a
    /// terminal, or when <c>BAGEL_PROGRESS=1</c>.</summary>
    public bool ShowProgress { get; init; }

    /// <summary>Redraw the progress bar at most this often. Default 0.5 s.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(0.5);
}
