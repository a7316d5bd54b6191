namespace Bagel.Models.Qwen2;

/// <summary>The inputs of a Qwen2 packed forward pass do not fit together (lengths, routing indexes).</summary>
public sealed class Qwen2InputException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What does not fit and what to do.</param>
    public Qwen2InputException(string message) : base(message) { }
}
