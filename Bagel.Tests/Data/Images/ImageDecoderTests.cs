using System.Buffers.Binary;
using Bagel.Data.Images;

namespace Bagel.Tests.Data.Images;

public class ImageDecoderTests
{
    private static readonly ImageDecoder Default = new();
    private static readonly ImageDecoder Reference = new(ImageDecodeOptions.Reference);

    private static RgbImage Decode(string name, ImageDecoder? decoder = null) =>
        (decoder ?? Default).DecodeFile(SharedData.Require("images/" + name));

    private static long Sum(RgbImage image) => image.Pixels.Sum(b => (long)b);

    [Theory]
    [NeedsSharedData("images")]
    [InlineData("jpeg_baseline_rgb_480x360.jpg", 480, 360)]
    [InlineData("jpeg_baseline_rgb_128x128_hopper.jpg", 128, 128)]
    [InlineData("jpeg_progressive_rgb_320x240.jpg", 320, 240)]
    [InlineData("jpeg_grayscale_128x128_hopper.jpg", 128, 128)]
    [InlineData("jpeg_cmyk_adobe_ycck_100x100.jpg", 100, 100)]
    [InlineData("jpeg_gray_1x1.jpg", 1, 1)]
    [InlineData("png_rgba_200x150.png", 200, 150)]
    [InlineData("png_palette_trns_162x150.png", 162, 150)]
    [InlineData("png_16bit_rgb_32x32.png", 32, 32)]
    [InlineData("png_16bit_rgba_32x32.png", 32, 32)]
    [InlineData("png_wide_gray_750x30.png", 750, 30)]
    [InlineData("png_widescreen_rgb_2000x1000.png", 2000, 1000)]
    [InlineData("webp_lossy_vp8_128x128_hopper.webp", 128, 128)]
    [InlineData("webp_lossy_vp8x_exif_480x360.webp", 480, 360)]
    public void Every_real_image_decodes_to_its_size_as_rgb(string name, int width, int height)
    {
        RgbImage image = Decode(name);
        Assert.Equal(width, image.Width);
        Assert.Equal(height, image.Height);
        Assert.Equal(width * height * 3, image.Pixels.Length);
    }

    [Theory]
    [NeedsSharedData("images")]
    [InlineData("png_rgba_200x150.png", 18_534_739L, 100, 75, 144, 59, 59)]
    [InlineData("png_palette_trns_162x150.png", 13_378_787L, 81, 75, 33, 23, 3)]
    [InlineData("png_16bit_rgba_32x32.png", 640_560L, 16, 16, 8, 8, 255)]
    public void Transparency_is_composited_onto_white_as_pil_img2rgb_does(string name, long sum, int x, int y, int r, int g, int b)
    {
        RgbImage image = Decode(name);
        Assert.Equal((255, 255, 255), ToInts(image.GetPixel(0, 0)));
        Assert.Equal((r, g, b), ToInts(image.GetPixel(x, y)));
        Assert.Equal(sum, Sum(image));
    }

    [Theory]
    [NeedsSharedData("images")]
    [InlineData("png_rgba_200x150.png")]
    [InlineData("png_palette_trns_162x150.png")]
    [InlineData("png_16bit_rgba_32x32.png")]
    [InlineData("png_16bit_rgb_32x32.png")]
    [InlineData("png_wide_gray_750x30.png")]
    [InlineData("png_widescreen_rgb_2000x1000.png")]
    public void Lossless_images_decode_to_exactly_the_pixels_pil_gives(string name)
    {
        string stem = Path.GetFileNameWithoutExtension(name);
        RgbImage expected = ImageFixtures.DecodePng($"pixels/{stem}.decoded.png");
        RgbImage actual = Decode(name, Reference);
        Assert.Equal(ImageFixtures.Sha256(expected.Pixels), ImageFixtures.Sha256(actual.Pixels));
    }

    [Theory]
    [NeedsSharedData("images")]
    [InlineData("jpeg_baseline_rgb_480x360.jpg", 0)]
    [InlineData("jpeg_baseline_rgb_128x128_hopper.jpg", 0)]
    [InlineData("jpeg_progressive_rgb_320x240.jpg", 0)]
    [InlineData("jpeg_grayscale_128x128_hopper.jpg", 0)]
    [InlineData("jpeg_exif_orientation6_128x128_hopper.jpg", 0)]
    [InlineData("jpeg_cmyk_adobe_ycck_100x100.jpg", 0)]
    [InlineData("webp_lossy_vp8_128x128_hopper.webp", 0)]
    [InlineData("webp_lossy_vp8x_exif_480x360.webp", 0)]
    public void Lossy_images_decode_close_to_pil(string name, int maxAbsDiff)
    {
        string stem = Path.GetFileNameWithoutExtension(name);
        RgbImage expected = ImageFixtures.DecodePng($"pixels/{stem}.decoded.png");
        RgbImage actual = Decode(name, Reference);
        int max = 0;
        long total = 0;
        for (int i = 0; i < expected.Pixels.Length; i++)
        {
            int d = Math.Abs(expected.Pixels[i] - actual.Pixels[i]);
            max = Math.Max(max, d);
            total += d;
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"{name}: max abs diff {max}, mean {(double)total / expected.Pixels.Length:F4}");
        Assert.True(max <= maxAbsDiff, $"{name}: max abs diff {max} (mean {(double)total / expected.Pixels.Length:F4}) vs PIL exceeds {maxAbsDiff}");
    }

    public static TheoryData<string> FormatFixtures() =>
        new(ImageFixtures.Load("formats.json").GetProperty("images").EnumerateArray().Select(e => e.GetProperty("file").GetString()!));

    [Theory]
    [MemberData(nameof(FormatFixtures))]
    public void Gif_bmp_webp_and_png_transparency_modes_decode_to_exactly_what_pil_img2rgb_gives(string file)
    {
        var entry = ImageFixtures.Load("formats.json").GetProperty("images").EnumerateArray().Single(e => e.GetProperty("file").GetString() == file);
        RgbImage image = Reference.DecodeFile(Path.Combine(ImageFixtures.Directory, file));
        Assert.Equal((entry.GetProperty("width").GetInt32(), entry.GetProperty("height").GetInt32()), (image.Width, image.Height));
        Assert.Equal(entry.GetProperty("rgb_hex").GetString(), Convert.ToHexStringLower(image.Pixels));
    }

    [Fact]
    [NeedsSharedData("images")]
    public void Grayscale_expands_to_three_equal_channels()
    {
        RgbImage image = Decode("jpeg_grayscale_128x128_hopper.jpg");
        for (int i = 0; i < image.Pixels.Length; i += 3)
        {
            Assert.Equal(image.Pixels[i], image.Pixels[i + 1]);
            Assert.Equal(image.Pixels[i], image.Pixels[i + 2]);
        }
        var (r, _, _) = image.GetPixel(0, 0);
        Assert.InRange(r, 24, 28); // PIL: 26 (lossy)
        Assert.Equal((0, 0, 0), ToInts(Decode("jpeg_gray_1x1.jpg").GetPixel(0, 0)));
    }

    [Fact]
    [NeedsSharedData("images")]
    public void Cmyk_top_left_is_red_dominant()
    {
        var (r, g, b) = Decode("jpeg_cmyk_adobe_ycck_100x100.jpg").GetPixel(0, 0);
        Assert.True(r > 200 && g < 60 && b < 60, $"top-left is ({r}, {g}, {b})");
    }

    [Fact]
    [NeedsSharedData("images")]
    public void Exif_orientation_6_is_applied_by_default_and_ignored_by_the_reference_options()
    {
        RgbImage upright = Decode("jpeg_baseline_rgb_128x128_hopper.jpg");
        double applied = MeanAbsDiff(upright, Decode("jpeg_exif_orientation6_128x128_hopper.jpg"));
        double ignored = MeanAbsDiff(upright, Decode("jpeg_exif_orientation6_128x128_hopper.jpg", Reference));
        Assert.True(applied <= 17, $"applied: mean abs diff {applied:F2}");
        Assert.True(ignored >= 50, $"ignored: mean abs diff {ignored:F2}");
    }

    [Fact]
    [NeedsSharedData("images")]
    public void Exif_orientation_8_swaps_width_and_height_unless_ignored()
    {
        RgbImage turned = Decode("jpeg_exif_orientation8_2x1.jpg");
        Assert.Equal((1, 2), (turned.Width, turned.Height));
        RgbImage stored = Decode("jpeg_exif_orientation8_2x1.jpg", Reference);
        Assert.Equal((2, 1), (stored.Width, stored.Height));
        var (r, g, b) = turned.GetPixel(0, 1);
        Assert.True(r > 200 && g < 60 && b < 60, $"expected red, got ({r}, {g}, {b})");
    }

    [Theory]
    [NeedsSharedData("images")]
    [InlineData("corrupt_jpeg_truncated_first16384bytes_480x360.jpg")]
    [InlineData("corrupt_jpeg_truncated_progressive_100x100.jpg")]
    [InlineData("corrupt_png_truncated_idat_640x480.png")]
    public void A_truncated_image_throws_truncated_naming_the_file(string name)
    {
        string path = SharedData.Require("images/" + name);
        var error = Assert.Throws<ImageDecodeException>(() => Default.DecodeFile(path));
        Assert.Equal(ImageDecodeFailure.Truncated, error.Failure);
        Assert.Equal(path, error.ImageSource);
        Assert.Contains(path, error.Message);
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    [NeedsSharedData("images")]
    public void A_truncated_image_is_accepted_when_allowed()
    {
        var tolerant = new ImageDecoder(new ImageDecodeOptions { AllowTruncated = true });
        RgbImage image = tolerant.DecodeFile(SharedData.Require("images/corrupt_jpeg_truncated_first16384bytes_480x360.jpg"));
        Assert.Equal((480, 360), (image.Width, image.Height));
    }

    [Fact]
    [NeedsSharedData("images")]
    public void Garbage_after_a_png_signature_is_undecodable()
    {
        string path = SharedData.Require("images/corrupt_png_garbage_after_signature.png");
        var error = Assert.Throws<ImageDecodeException>(() => Default.DecodeFile(path));
        Assert.Equal(ImageDecodeFailure.Undecodable, error.Failure);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    [NeedsSharedData("images")]
    public void Random_bytes_are_undecodable_and_named_by_the_given_source()
    {
        var error = Assert.Throws<ImageDecodeException>(() => Default.Decode([1, 2, 3, 4, 5, 6, 7, 8, 9], "shard-3.parquet row 17"));
        Assert.Equal(ImageDecodeFailure.Undecodable, error.Failure);
        Assert.Contains("shard-3.parquet row 17", error.Message);
    }

    [Fact]
    [NeedsSharedData("images")]
    public void A_header_declaring_too_many_pixels_is_rejected_before_decoding()
    {
        // A crafted PNG whose IHDR declares 20000 x 20000 (400 M pixels) with no real pixel data behind it.
        byte[] bomb = CraftedPng(20_000, 20_000);
        var error = Assert.Throws<ImageDecodeException>(() => Default.Decode(bomb, "bomb.png"));
        Assert.Equal(ImageDecodeFailure.TooLarge, error.Failure);
        Assert.Contains("400000000", error.Message);

        var strict = new ImageDecoder(new ImageDecodeOptions { MaxPixels = 128 * 128 - 1 });
        var small = Assert.Throws<ImageDecodeException>(() => strict.DecodeFile(SharedData.Require("images/jpeg_baseline_rgb_128x128_hopper.jpg")));
        Assert.Equal(ImageDecodeFailure.TooLarge, small.Failure);
    }

    private static byte[] CraftedPng(int width, int height)
    {
        var stream = new MemoryStream();
        stream.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // RGB
        WriteChunk(stream, "IHDR", ihdr);
        WriteChunk(stream, "IDAT", [0x78, 0x9C, 0x03, 0x00]);
        WriteChunk(stream, "IEND", []);
        return stream.ToArray();
    }

    private static void WriteChunk(Stream stream, string type, byte[] data)
    {
        var header = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header, data.Length);
        System.Text.Encoding.ASCII.GetBytes(type, header.AsSpan(4));
        stream.Write(header);
        stream.Write(data);
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, PngCrc([.. header.AsSpan(4).ToArray(), .. data]));
        stream.Write(crc);
    }

    // The PNG chunk CRC: CRC-32 (polynomial 0xEDB88320, reflected) over the chunk type and data.
    private static uint PngCrc(byte[] bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    private static double MeanAbsDiff(RgbImage a, RgbImage b)
    {
        Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
        long total = 0;
        for (int i = 0; i < a.Pixels.Length; i++) total += Math.Abs(a.Pixels[i] - b.Pixels[i]);
        return (double)total / a.Pixels.Length;
    }

    private static (int, int, int) ToInts((byte R, byte G, byte B) p) => (p.R, p.G, p.B);
}
