namespace Bagel.Models.Qwen2;

/// <summary>A Qwen2 checkpoint does not fit the model (wrong, missing or misshapen tensors).</summary>
public sealed class Qwen2CheckpointException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What does not fit, naming the file and keys, and what to do.</param>
    public Qwen2CheckpointException(string message) : base(message) { }
}
