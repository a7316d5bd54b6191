namespace Bagel.Data.Images;

/// <summary>Options of <see cref="ImageDecoder"/>.</summary>
public sealed record ImageDecodeOptions
{
    /// <summary>
    /// The reference's <c>Image.MAX_IMAGE_PIXELS = 200000000</c> (set in vlm_dataset.py and edit_dataset.py): the
    /// decompression-bomb limit, checked from the header before any pixel is decoded.
    /// </summary>
    public const long ReferenceMaxImagePixels = 200_000_000;

    /// <summary>
    /// The largest width·height accepted; default <see cref="ReferenceMaxImagePixels"/>. Larger images throw
    /// <see cref="ImageDecodeException"/> with <see cref="ImageDecodeFailure.TooLarge"/>. PIL only warns between 1× and
    /// 2× this limit and raises above 2×; we raise above 1× (decoding 200 M pixels already needs 600 MB). One decoded
    /// RGBA buffer must also fit a .NET array, which caps the limit at about 536 M pixels whatever is set here.
    /// </summary>
    public long MaxPixels { get; init; } = ReferenceMaxImagePixels;

    /// <summary>
    /// Apply the EXIF orientation so the image is upright; default true. This departs from the reference training
    /// path, where <c>Image.open</c> ignores EXIF orientation; set false to reproduce the reference exactly.
    /// </summary>
    public bool ApplyExifOrientation { get; init; } = true;

    /// <summary>
    /// Accept a truncated image, with the missing part filled by the decoder (PIL's <c>LOAD_TRUNCATED_IMAGES</c>);
    /// default false: a truncated image throws <see cref="ImageDecodeException"/> with
    /// <see cref="ImageDecodeFailure.Truncated"/>, as PIL's <c>load()</c> does in the reference.
    /// </summary>
    public bool AllowTruncated { get; init; }

    /// <summary>Options that reproduce the reference's decoding (EXIF orientation ignored).</summary>
    public static ImageDecodeOptions Reference { get; } = new() { ApplyExifOrientation = false };
}
