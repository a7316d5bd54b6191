using Bagel.Data.Images;

namespace Bagel.Data.Config;

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
    public required ImageTransformOptions ImageTransform { get; init; }

    /// <summary><c>vit_image_transform_args</c>: the ViT copy of condition images (required for edit).</summary>
    public ImageTransformOptions? VitImageTransform { get; init; }

    /// <summary><c>frame_sampler_args</c> (required for VLM, as in the reference).</summary>
    public FrameSamplerArgs? FrameSampler { get; init; }

    /// <summary><c>shuffle_lines</c>: shuffle the JSONL lines (seeded) before truncating to num_used_data (VLM; default false).</summary>
    public bool ShuffleLines { get; init; }

    /// <summary><c>shuffle_seed</c> (VLM; default 0).</summary>
    public int ShuffleSeed { get; init; }

    /// <summary><c>resume_data_status</c>: when false, this group ignores the saved data position on resume (default true).</summary>
    public bool ResumeDataStatus { get; init; } = true;
}
