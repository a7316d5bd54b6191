using System.Security.Cryptography;
using System.Text.Json;
using Bagel.Data.Images;

namespace Bagel.Tests.Data.Images;

/// <summary>Loads the committed reference fixtures of Bagel.Tests/Fixtures/Images (see its README).</summary>
internal static class ImageFixtures
{
    public static string Directory { get; } = Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "Images");

    public static JsonElement Load(string fileName)
    {
        using var stream = File.OpenRead(Path.Combine(Directory, fileName));
        using var document = JsonDocument.Parse(stream);
        return document.RootElement.Clone();
    }

    public static ImageTransformOptions Options(JsonElement config) => new()
    {
        MaxImageSize = config.GetProperty("max_image_size").GetInt32(),
        MinImageSize = config.GetProperty("min_image_size").GetInt32(),
        ImageStride = config.GetProperty("image_stride").GetInt32(),
        MaxPixels = config.GetProperty("max_pixels").GetInt32(),
    };

    /// <summary>Decodes a fixture PNG (lossless, written by PIL from its own decode) with the reference's settings.</summary>
    public static RgbImage DecodePng(string relativePath) =>
        new ImageDecoder(ImageDecodeOptions.Reference).DecodeFile(Path.Combine(Directory, relativePath));

    public static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
