namespace Bagel.Models.Bagel;

/// <summary>A <see cref="BagelConfig"/> is inconsistent (a missing part config, an unsupported option).</summary>
public sealed class BagelConfigException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    public BagelConfigException(string message) : base(message) { }
}
