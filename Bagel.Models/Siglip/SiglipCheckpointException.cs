namespace Bagel.Models.Siglip;

/// <summary>A SigLIP checkpoint does not fit the vision tower (unknown, missing or misshapen tensors).</summary>
public sealed class SiglipCheckpointException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What does not fit, naming the file and keys, and what to do.</param>
    public SiglipCheckpointException(string message) : base(message) { }
}
