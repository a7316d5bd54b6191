namespace Bagel.Models.FluxVae;

/// <summary>A FLUX VAE configuration, checkpoint or input problem; the message names the value or tensor and what to do.</summary>
public sealed class FluxVaeException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    public FluxVaeException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="inner">The cause.</param>
    public FluxVaeException(string message, Exception inner) : base(message, inner) { }
}
