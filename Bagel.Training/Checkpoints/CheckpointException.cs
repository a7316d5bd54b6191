namespace Bagel.Training.Checkpoints;

/// <summary>A checkpoint file or folder is missing, malformed, or does not fit the run; the message names it.</summary>
public sealed class CheckpointException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CheckpointException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public CheckpointException(string message, Exception inner) : base(message, inner) { }
}
