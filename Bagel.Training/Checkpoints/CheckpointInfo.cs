namespace Bagel.Training.Checkpoints;

/// <summary>A complete checkpoint folder found in <c>checkpoint_dir</c>.</summary>
/// <param name="CompletedSteps">The step number in the folder name.</param>
/// <param name="Folder">Full path of the folder.</param>
public sealed record CheckpointInfo(long CompletedSteps, string Folder)
{
    /// <summary>Full path of a file in the folder.</summary>
    public string File(string fileName) => Path.Combine(Folder, fileName);
}
