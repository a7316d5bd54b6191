namespace Bagel.Core.DataStatus;

/// <summary>What a <see cref="SourcePosition"/>'s numbers mean; one kind per dataset type (training.md §2.6).</summary>
public enum SourcePositionKind
{
    /// <summary>T2I parquet: <c>[file_idx_in_worker_slice, row_group_id, row_idx]</c>.</summary>
    T2IParquet,

    /// <summary>Editing parquet: <c>[global_row_group_idx, row_idx]</c>.</summary>
    EditParquet,

    /// <summary>VLM JSONL: <c>[row_idx]</c> (the reference stores a bare int).</summary>
    VlmJsonl,

    /// <summary>Plain image folder: <c>[image_idx_in_worker_slice]</c> (Bagel.NET's own source kind).</summary>
    ImageFolder,

    /// <summary>Any other source: the numbers are defined by that source.</summary>
    Custom,
}
