namespace Bagel.Core.Batching;

/// <summary>Model limits that <see cref="PackedBatch.Validate"/> checks when given (all optional).</summary>
public sealed record PackedBatchLimits
{
    /// <summary>The model's <c>max_latent_size</c> G: latent grids must fit G×G and latent position ids must be
    /// <c>row·G + col</c> (catches the reference's out-of-bounds / aliasing issue #131). Null skips the check.</summary>
    public int? MaxLatentSize { get; init; }

    /// <summary>The model's <c>vit_max_num_patch_per_side</c> (70): ViT position ids must be below its square.
    /// Null skips the check.</summary>
    public int? VitMaxPatchesPerSide { get; init; }

    /// <summary>The vocabulary size: token and label ids must be below it. Null skips the check.</summary>
    public long? VocabularySize { get; init; }
}
