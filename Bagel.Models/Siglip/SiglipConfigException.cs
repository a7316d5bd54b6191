namespace Bagel.Models.Siglip;

/// <summary>A SigLIP config.json is unreadable, lacks a field, or asks for something this port does not support.</summary>
public sealed class SiglipConfigException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, naming the file and key, and what to do.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public SiglipConfigException(string message, Exception? inner = null) : base(message, inner) { }
}
