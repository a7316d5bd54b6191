namespace Bagel.Models.Bagel;

/// <summary>A packed batch (or the latents passed with it) does not fit the BAGEL model it is fed to.</summary>
public sealed class BagelInputException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What does not fit and what to do.</param>
    public BagelInputException(string message) : base(message) { }
}
