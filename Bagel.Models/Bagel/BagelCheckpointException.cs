namespace Bagel.Models.Bagel;

/// <summary>A BAGEL checkpoint does not fit the model: unknown, missing or misshapen tensors (reported together).</summary>
public sealed class BagelCheckpointException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The file, the offending keys and what to do.</param>
    public BagelCheckpointException(string message) : base(message) { }
}
