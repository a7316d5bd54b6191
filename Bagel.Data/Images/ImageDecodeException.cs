namespace Bagel.Data.Images;

/// <summary>Why an image could not be decoded.</summary>
public enum ImageDecodeFailure
{
    /// <summary>The bytes are not an image in a supported format, or the data inside is corrupt.</summary>
    Undecodable,

    /// <summary>The header is valid but the pixel data ends early (a cut-off download or write).</summary>
    Truncated,

    /// <summary>The header declares more pixels than <see cref="ImageDecodeOptions.MaxPixels"/> (decompression-bomb guard).</summary>
    TooLarge,
}

/// <summary>
/// An image could not be decoded. The message names the source (a file path, or a parquet row description given by
/// the caller) and the failure; data loaders catch it to count and skip the sample.
/// </summary>
public sealed class ImageDecodeException : Exception
{
    /// <summary>Creates the exception for <paramref name="imageSource"/>.</summary>
    public ImageDecodeException(string imageSource, ImageDecodeFailure failure, string message, Exception? inner = null)
        : base(message, inner)
    {
        ImageSource = imageSource;
        Failure = failure;
    }

    /// <summary>The file path or description of where the bytes came from.</summary>
    public string ImageSource { get; }

    /// <summary>What went wrong.</summary>
    public ImageDecodeFailure Failure { get; }
}
