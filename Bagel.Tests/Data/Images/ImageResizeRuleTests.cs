using Bagel.Data.Images;

namespace Bagel.Tests.Data.Images;

public class ImageResizeRuleTests
{
    public static TheoryData<string> ConfigNames() => new(["t2i", "edit_vae", "edit_vit", "vlm_1", "vlm_3"]);

    [Theory]
    [MemberData(nameof(ConfigNames))]
    public void Every_fixture_size_matches_the_reference(string configName)
    {
        var config = ImageFixtures.Load("resize_sizes.json").GetProperty("configs").EnumerateArray()
            .Single(c => c.GetProperty("name").GetString() == configName);
        var options = ImageFixtures.Options(config);
        int imgNum = config.GetProperty("img_num").GetInt32();
        var mismatches = new List<string>();
        int count = 0;
        foreach (var row in config.GetProperty("cases").EnumerateArray())
        {
            int w = row[0].GetInt32(), h = row[1].GetInt32();
            var expected = (row[2].GetInt32(), row[3].GetInt32());
            var actual = ImageResizeRule.ComputeResizeSize(w, h, options, imgNum);
            if (actual != expected) mismatches.Add($"{w}x{h}: expected {expected}, got {actual}");
            count++;
        }
        Assert.True(count >= 100, $"only {count} cases in the fixture");
        Assert.Empty(mismatches);
    }

    [Fact]
    public void The_worked_examples_of_the_spec_hold()
    {
        Assert.Equal((1024, 688), ImageResizeRule.ComputeResizeSize(1500, 1000, ImageTransformOptions.TextToImage));
        Assert.Equal((686, 686), ImageResizeRule.ComputeResizeSize(980, 980, ImageTransformOptions.Vlm, imgNum: 3));
        Assert.Equal((980, 980), ImageResizeRule.ComputeResizeSize(980, 980, ImageTransformOptions.Vlm, imgNum: 1));
    }

    [Fact]
    public void A_one_pixel_image_grows_to_the_minimum_size_in_whole_strides()
    {
        Assert.Equal((512, 512), ImageResizeRule.ComputeResizeSize(1, 1, ImageTransformOptions.TextToImage));
        Assert.Equal((224, 224), ImageResizeRule.ComputeResizeSize(1, 1, ImageTransformOptions.EditVit));
    }

    [Fact]
    public void The_position_grid_check_matches_the_largest_fixture_output()
    {
        foreach (var config in ImageFixtures.Load("resize_sizes.json").GetProperty("configs").EnumerateArray())
        {
            var options = ImageFixtures.Options(config);
            int largest = config.GetProperty("cases").EnumerateArray().Max(r => Math.Max(r[2].GetInt32(), r[3].GetInt32())) / options.ImageStride;
            Assert.True(largest <= options.MaxPatchesPerSide, $"{config.GetProperty("name")}: {largest} > {options.MaxPatchesPerSide}");
        }
        ImageTransformOptions.TextToImage.EnsureFitsPositionGrid(64, "max_latent_size");
        ImageTransformOptions.Vlm.EnsureFitsPositionGrid(70, "vit_max_num_patch_per_side");
        var error = Assert.Throws<ArgumentException>(() => ImageTransformOptions.TextToImage.EnsureFitsPositionGrid(32, "max_latent_size"));
        Assert.Contains("Raise max_latent_size to at least 64", error.Message);
        Assert.Equal(64, new ImageTransformOptions { MaxImageSize = 1016 }.MaxPatchesPerSide); // 63.5 rounds to even
        Assert.Equal((1024, 512), ImageResizeRule.ComputeResizeSize(4000, 2000, new ImageTransformOptions { MaxImageSize = 1016 }));
    }

    [Fact]
    public void Invalid_arguments_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageResizeRule.ComputeResizeSize(0, 5, ImageTransformOptions.TextToImage));
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageResizeRule.ComputeResizeSize(5, 5, ImageTransformOptions.TextToImage, imgNum: 0));
        var bad = new ImageTransformOptions { ImageStride = 0, MaxPixels = -1, ImageStd = [0.5f, 0f, 0.5f] };
        var error = Assert.Throws<ArgumentException>(bad.Validate);
        Assert.Contains(nameof(ImageTransformOptions.ImageStride), error.Message);
        Assert.Contains(nameof(ImageTransformOptions.MaxPixels), error.Message);
        Assert.Contains(nameof(ImageTransformOptions.ImageStd), error.Message);
    }
}
