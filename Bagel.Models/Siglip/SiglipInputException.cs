namespace Bagel.Models.Siglip;

/// <summary>The packed ViT inputs do not fit the vision tower (shapes, dtypes, lengths or position ids).</summary>
public sealed class SiglipInputException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What does not fit, naming the tensor, and what to do.</param>
    public SiglipInputException(string message) : base(message) { }
}
