namespace Bagel.Data.Config;

/// <summary>
/// The <c>image_transform_args</c> / <c>vit_image_transform_args</c> block of a dataset group (the reference's
/// <c>ImageTransform</c> arguments, same names and defaults).
/// </summary>
public sealed record ImageTransformArgs
{
    /// <summary>The reference's default <c>max_pixels</c>: 14·14·9·1024 = 1,806,336.</summary>
    public const long DefaultMaxPixels = 14 * 14 * 9 * 1024;

    /// <summary>Both output sides are multiples of this (<c>image_stride</c>): 16 for VAE images, 14 for ViT images.</summary>
    public required int ImageStride { get; init; }

    /// <summary>The long edge is shrunk to at most this (<c>max_image_size</c>).</summary>
    public required int MaxImageSize { get; init; }

    /// <summary>The short edge is grown to at least this (<c>min_image_size</c>); it wins over the max.</summary>
    public required int MinImageSize { get; init; }

    /// <summary>Pixel budget per image, divided by the sample's image count (<c>max_pixels</c>; default 1,806,336).</summary>
    public long MaxPixels { get; init; } = DefaultMaxPixels;

    /// <summary>Per-channel normalisation mean (<c>image_mean</c>; default 0.5, 0.5, 0.5).</summary>
    public IReadOnlyList<double> ImageMean { get; init; } = [0.5, 0.5, 0.5];

    /// <summary>Per-channel normalisation std (<c>image_std</c>; default 0.5, 0.5, 0.5).</summary>
    public IReadOnlyList<double> ImageStd { get; init; } = [0.5, 0.5, 0.5];

    /// <summary>
    /// The largest side the resize rule can produce: the final clamp keeps the long edge near <see cref="MaxImageSize"/>,
    /// and the stride rounding (round half to even) can move it up by less than half a stride.
    /// </summary>
    public int LargestOutputSide => Math.Max(ImageStride, (int)Math.Round((double)MaxImageSize / ImageStride, MidpointRounding.ToEven) * ImageStride);
}

/// <summary>The <c>frame_sampler_args</c> block (VLM video lines; video itself is a counted skip in Bagel.NET).</summary>
public sealed record FrameSamplerArgs
{
    /// <summary><c>max_num_frames</c> (default -1).</summary>
    public int MaxNumFrames { get; init; } = -1;

    /// <summary><c>min_num_frames</c> (default 8).</summary>
    public int MinNumFrames { get; init; } = 8;

    /// <summary><c>sample</c> (default "rand").</summary>
    public string Sample { get; init; } = "rand";
}

/// <summary>One top-level block of the dataset YAML: a group of datasets of one kind, with its sampling settings.</summary>
public sealed record DatasetGroupConfig
{
    /// <summary>The group name: the YAML top-level key, which is also the dataset kind (<see cref="DatasetGroupKinds"/>).</summary>
    public required string Name { get; init; }

    /// <summary><c>dataset_names</c>: registry names of the datasets in this group (concatenated).</summary>
    public required IReadOnlyList<string> DatasetNames { get; init; }

    /// <summary><c>num_used_data</c>: one entry per dataset: parquet files (T2I, edit) or JSONL lines (VLM).</summary>
    public required IReadOnlyList<long> NumUsedData { get; init; }

    /// <summary><c>weight</c>: sampling weight of the group (default 0.0).</summary>
    public double Weight { get; init; }

    /// <summary><c>is_mandatory</c>: every packed batch starts with one sample of this group (default false).</summary>
    public bool IsMandatory { get; init; }

    /// <summary><c>image_transform_args</c>: the main transform (VAE stream for T2I/edit, ViT stream for VLM).</summary>
    public required ImageTransformArgs ImageTransform { get; init; }

    /// <summary><c>vit_image_transform_args</c>: the ViT copy of condition images (required for edit).</summary>
    public ImageTransformArgs? VitImageTransform { get; init; }

    /// <summary><c>frame_sampler_args</c> (required for VLM, as in the reference).</summary>
    public FrameSamplerArgs? FrameSampler { get; init; }

    /// <summary><c>shuffle_lines</c>: shuffle the JSONL lines (seeded) before truncating to num_used_data (VLM; default false).</summary>
    public bool ShuffleLines { get; init; }

    /// <summary><c>shuffle_seed</c> (VLM; default 0).</summary>
    public int ShuffleSeed { get; init; }

    /// <summary><c>resume_data_status</c>: when false, this group ignores the saved data position on resume (default true).</summary>
    public bool ResumeDataStatus { get; init; } = true;
}
