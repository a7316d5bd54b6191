namespace Bagel.Core.Batching;

/// <summary>Model limits that <see cref="PackedBatch.Validate"/> checks when given (all optional).</summary>
public sealed record PackedBatchLimits
{
    /// <summary>The model's <c>max_latent_size</c> G: latent grids must fit G×G and latent position ids must be
    /// <c>row·G + col</c> (catches the reference's out-of-bounds / aliasing issue #131). Null skips the check.</summary>
    public int? MaxLatentSize { get; init; }

    /// <summary>The latent position ids were made with <c>interpolate_pos</c>: each image's fractional coordinates
    /// bucketed onto the <see cref="MaxLatentSize"/> grid, so an id is <c>bucket_row·G + bucket_col</c> rather than
    /// <c>row·G + col</c>. When true (and <see cref="MaxLatentSize"/> is given), ids are checked to lie in [0, G²) and to
    /// be non-decreasing along each image (buckets grow with the row and column) instead of matching the formula, and a
    /// latent grid may exceed G×G.</summary>
    public bool InterpolatedLatentPositions { get; init; }

    /// <summary>The model's <c>vit_max_num_patch_per_side</c> (70): ViT position ids must be below its square.
    /// Null skips the check.</summary>
    public int? VitMaxPatchesPerSide { get; init; }

    /// <summary>The vocabulary size: token and label ids must be below it. Null skips the check.</summary>
    public long? VocabularySize { get; init; }
}
