using Bagel.Data.Config;
using Bagel.Tests.Infrastructure;

namespace Bagel.Tests.Data.Config;

public sealed class DatasetMixConfigTests : IDisposable
{
    // The reference's data/configs/example.yaml, key for key.
    private const string ReferenceExample = """
        t2i_pretrain:
          dataset_names:
          - t2i
          image_transform_args:
            image_stride: 16
            max_image_size: 1024
            min_image_size: 512
          is_mandatory: true
          num_used_data: # The sum should be larger that NUM_GPUS x NUM_WORKERS
          - 10
          weight: 1

        unified_edit:
          dataset_names:
          - seedxedit_multi
          image_transform_args:
            image_stride: 16
            max_image_size: 1024
            min_image_size: 512
          vit_image_transform_args:
            image_stride: 14
            max_image_size: 518
            min_image_size: 224
          is_mandatory: false
          num_used_data:
          - 10
          weight: 1

        vlm_sft:
          dataset_names:
          - llava_ov
          image_transform_args:
            image_stride: 14
            max_image_size: 980
            min_image_size: 378
            max_pixels: 2_007_040
          frame_sampler_args:
            max_num_frames: 12
            min_num_frames: 8
          is_mandatory: true
          shuffle_lines: True
          shuffle_seed: 0
          num_used_data:
          - 1000
          weight: 1
        """;

    private readonly TempDirectory _dir = new();
    private readonly DatasetInfoRegistry _registry;

    public DatasetMixConfigTests()
    {
        _dir.File("vlm/conv.jsonl", "{}\n");
        _registry = new DatasetInfoRegistry()
            .Add("t2i_pretrain", "t2i", new DatasetInfoEntry { DataDir = _dir.Folder("t2i") })
            .Add("unified_edit", "seedxedit_multi", new DatasetInfoEntry { DataDir = _dir.Folder("edit") })
            .Add("vlm_sft", "llava_ov", new DatasetInfoEntry { DataDir = _dir.Folder("vlm"), JsonlPath = Path.Combine(_dir.Path, "vlm", "conv.jsonl") });
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ReferenceExampleLoadsWithTheReferenceValuesAndDefaults()
    {
        var config = DatasetMixConfig.Load(_dir.File("example.yaml", ReferenceExample), _registry);

        Assert.Equal(["t2i_pretrain", "unified_edit", "vlm_sft"], config.Groups.Select(g => g.Name));
        var t2i = config.Groups[0];
        Assert.True(t2i.IsMandatory);
        Assert.Equal([10L], t2i.NumUsedData);
        Assert.Equal(1.0, t2i.Weight);
        Assert.Equal(14 * 14 * 9 * 1024, t2i.ImageTransform.MaxPixels);
        Assert.True(t2i.ResumeDataStatus);
        var edit = config.Groups[1];
        Assert.False(edit.IsMandatory);
        Assert.Equal(518, edit.VitImageTransform!.MaxImageSize);
        var vlm = config.Groups[2];
        Assert.Equal(2_007_040, vlm.ImageTransform.MaxPixels);
        Assert.True(vlm.ShuffleLines);
        Assert.Equal(12, vlm.FrameSampler!.MaxNumFrames);
        Assert.Equal([0.5f, 0.5f, 0.5f], vlm.ImageTransform.ImageMean);
    }

    [Fact]
    public void UnknownKeyIsAnErrorNamingKeyLineFileAndAllowedKeys()
    {
        int at = ReferenceExample.IndexOf("  is_mandatory: true", StringComparison.Ordinal); // the T2I block's
        string file = _dir.File("bad.yaml", ReferenceExample.Insert(at, "  shuffle_lines: true\n"));
        var ex = Assert.Throws<DataConfigException>(() => DatasetMixConfig.Load(file, _registry));
        Assert.Equal("t2i_pretrain.shuffle_lines", ex.KeyPath);
        Assert.Equal(file, ex.FilePath);
        Assert.Equal(8, ex.Line);
        Assert.Contains("allowed keys are: dataset_names, image_transform_args, is_mandatory, num_used_data, resume_data_status, weight", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ImpossibleValuesAreAllReportedAtOnce()
    {
        string file = _dir.File("bad.yaml", """
            t2i_pretrain:
              dataset_names: [t2i, nope]
              num_used_data: [0]
              weight: -1
              image_transform_args: {image_stride: 0, max_image_size: 1024, min_image_size: 512, image_std: [0.5, 0.5]}
            unified_edit:
              dataset_names: [seedxedit_multi]
              num_used_data: [10]
              image_transform_args: {image_stride: 16, max_image_size: 1024, min_image_size: 512}
            vlm_sft:
              dataset_names: [llava_ov]
              num_used_data: [1]
              weight: lots
              image_transform_args: {image_stride: 14, max_image_size: 980, min_image_size: 378, max_pixels: 2_007_040}
            """);

        var ex = Assert.Throws<DataConfigAggregateException>(() => DatasetMixConfig.Load(file, _registry));

        string[] keys = [.. ex.Errors.Select(e => e.KeyPath)];
        Assert.Contains("t2i_pretrain.dataset_names", keys);               // 'nope' is not registered
        Assert.Contains("t2i_pretrain.num_used_data", keys);               // count mismatch and 0
        Assert.Contains("t2i_pretrain.weight", keys);                      // negative
        Assert.Contains("t2i_pretrain.image_transform_args.image_stride", keys);
        Assert.Contains("t2i_pretrain.image_transform_args.image_std", keys);
        Assert.Contains("unified_edit.vit_image_transform_args", keys);    // required for edit
        Assert.Contains("vlm_sft.frame_sampler_args", keys);               // required for VLM
        Assert.Contains("vlm_sft.weight", keys);                           // not a number
        Assert.All(ex.Errors, e => Assert.Equal(file, e.FilePath));
    }

    [Fact]
    public void AllZeroWeightsAreRejected()
    {
        string file = _dir.File("zero.yaml", """
            t2i_pretrain:
              dataset_names: [t2i]
              num_used_data: [1]
              image_transform_args: {image_stride: 16, max_image_size: 512, min_image_size: 256}
            """);
        var ex = Assert.Throws<DataConfigException>(() => DatasetMixConfig.Load(file, _registry));
        Assert.Contains("weight 0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ImageSizesBeyondTheModelsTablesAreRejectedNamingBothValues()
    {
        var config = DatasetMixConfig.Load(_dir.File("example.yaml", ReferenceExample), _registry);

        var ex = Assert.Throws<DataConfigAggregateException>(() => config.ValidateAgainst(new ModelImageLimits(MaxLatentSize: 32)));

        Assert.Equal(2, ex.Errors.Count); // T2I and edit VAE streams at 1024 px; the ViT streams fit 70 patches
        var first = ex.Errors[0];
        Assert.Equal("t2i_pretrain.image_transform_args.max_image_size", first.KeyPath);
        Assert.Contains("MaxImageSize 1024", first.Message, StringComparison.Ordinal);
        Assert.Contains("max_latent_size is 32", first.Message, StringComparison.Ordinal);
        config.ValidateAgainst(new ModelImageLimits(MaxLatentSize: 64));
        var vit = Assert.Throws<DataConfigAggregateException>(() => config.ValidateAgainst(new ModelImageLimits(MaxLatentSize: 64, VitMaxNumPatchPerSide: 60)));
        Assert.Contains(vit.Errors, e => e.KeyPath == "vlm_sft.image_transform_args.max_image_size" && e.Message.Contains("vit_max_num_patch_per_side is 60", StringComparison.Ordinal));
    }
}
