namespace Bagel.Training.Checkpoints;

/// <summary>Where checkpoints go and how many stay.</summary>
public sealed class CheckpointOptions
{
    /// <summary>The folder holding one subfolder per saved step. Default <c>results/checkpoints</c> (reference <c>checkpoint_dir</c>).</summary>
    public string CheckpointDir { get; set; } = "results/checkpoints";

    /// <summary>
    /// Keep only this many most recent complete checkpoints; null keeps all (the reference keeps all). Default <c>null</c>.
    /// </summary>
    public int? KeepLast { get; set; }
}
