using System.Runtime.InteropServices;
using System.Text.Json;
using Bagel.Data.Images;
using TorchSharp;

namespace Bagel.Tests.Data.Images;

public class ImageTransformTests
{
    public static TheoryData<string, string> PixelCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var image in ImageFixtures.Load("pixels.json").GetProperty("images").EnumerateArray())
            foreach (var output in image.GetProperty("outputs").EnumerateArray())
                data.Add(image.GetProperty("source").GetString()!, output.GetProperty("config").GetString()!);
        return data;
    }

    private static (JsonElement Image, JsonElement Output, ImageTransformOptions Options, int ImgNum) Case(string source, string config)
    {
        var root = ImageFixtures.Load("pixels.json");
        var image = root.GetProperty("images").EnumerateArray().Single(i => i.GetProperty("source").GetString() == source);
        var output = image.GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("config").GetString() == config);
        var cfg = root.GetProperty("configs").EnumerateArray().Single(c => c.GetProperty("name").GetString() == config);
        return (image, output, ImageFixtures.Options(cfg), cfg.GetProperty("img_num").GetInt32());
    }

    [Theory]
    [NeedsSharedData("images")]
    [MemberData(nameof(PixelCases))]
    public void Resized_pixels_are_bit_identical_to_the_reference_given_the_same_decoded_pixels(string source, string config)
    {
        var (image, output, options, imgNum) = Case(source, config);
        RgbImage decoded = ImageFixtures.DecodePng(image.GetProperty("decoded").GetString()!);
        Assert.Equal(image.GetProperty("decoded_sum").GetInt64(), decoded.Pixels.Sum(b => (long)b));

        RgbImage resized = new ImageTransform(options).Resize(decoded, imgNum);

        Assert.Equal(output.GetProperty("width").GetInt32(), resized.Width);
        Assert.Equal(output.GetProperty("height").GetInt32(), resized.Height);
        if (output.TryGetProperty("resized", out var stored))
        {
            RgbImage expected = ImageFixtures.DecodePng(stored.GetString()!);
            int max = 0;
            long total = 0;
            for (int i = 0; i < expected.Pixels.Length; i++)
            {
                int diff = Math.Abs(expected.Pixels[i] - resized.Pixels[i]);
                max = Math.Max(max, diff);
                total += diff;
            }
            Assert.True(max == 0, $"{source} {config}: max abs diff {max}, mean {(double)total / expected.Pixels.Length:F5}");
        }
        Assert.Equal(output.GetProperty("resized_sha256").GetString(), ImageFixtures.Sha256(resized.Pixels));
    }

    [Theory]
    [NeedsSharedData("images")]
    [MemberData(nameof(PixelCases))]
    public void The_normalised_tensor_is_bit_identical_to_the_reference(string source, string config)
    {
        var (image, output, options, imgNum) = Case(source, config);
        RgbImage decoded = ImageFixtures.DecodePng(image.GetProperty("decoded").GetString()!);

        using var tensor = new ImageTransform(options).Apply(decoded, imgNum);

        Assert.Equal([3L, output.GetProperty("height").GetInt32(), output.GetProperty("width").GetInt32()], tensor.shape);
        Assert.Equal(torch.ScalarType.Float32, tensor.dtype);
        float[] values = tensor.data<float>().ToArray();
        Assert.Equal(output.GetProperty("tensor_sha256").GetString(), ImageFixtures.Sha256(MemoryMarshal.AsBytes(values.AsSpan())));
    }

    [Theory]
    [NeedsSharedData("images")]
    [MemberData(nameof(PixelCases))]
    public void Decoding_the_original_file_and_transforming_gives_the_reference_tensor(string source, string config)
    {
        var (_, output, options, imgNum) = Case(source, config);
        RgbImage decoded = new ImageDecoder(ImageDecodeOptions.Reference).DecodeFile(SharedData.Require("images/" + source));

        var transform = new ImageTransform(options);
        float[] values = transform.Normalize(transform.Resize(decoded, imgNum));

        Assert.Equal(output.GetProperty("tensor_sha256").GetString(), ImageFixtures.Sha256(MemoryMarshal.AsBytes(values.AsSpan())));
    }

    [Fact]
    public void Normalisation_maps_black_and_white_to_minus_one_and_one()
    {
        var transform = new ImageTransform(ImageTransformOptions.EditVit);
        var image = new RgbImage(2, 1, [0, 0, 0, 255, 255, 255]);
        float[] chw = transform.Normalize(image);
        Assert.Equal([-1f, 1f, -1f, 1f, -1f, 1f], chw);
    }

    [Fact]
    public void An_unchanged_size_returns_the_same_pixels()
    {
        var image = new RgbImage(224, 224, Enumerable.Range(0, 224 * 224 * 3).Select(i => (byte)(i * 7)).ToArray());
        RgbImage resized = new ImageTransform(ImageTransformOptions.EditVit).Resize(image);
        Assert.Equal(image.Pixels, resized.Pixels);
    }
}
