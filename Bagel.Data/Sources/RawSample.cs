using Bagel.Core.DataStatus;

namespace Bagel.Data.Sources;

/// <summary>
/// One undecoded record read from a source, with its position (for the data status) and a human-readable origin
/// (file, row group, row or line) that every warning about it names.
/// </summary>
/// <param name="Index">Group, worker and position, recorded in the data status once the sample is consumed.</param>
/// <param name="Origin">For messages: e.g. <c>/data/t2i/chunk_0.parquet row group 3 row 7</c>.</param>
/// <param name="Payload">The raw fields, per source kind.</param>
public sealed record RawSample(SampleDataIndex Index, string Origin, RawPayload Payload);

/// <summary>The raw fields of a record; one subtype per source kind.</summary>
public abstract record RawPayload;

/// <summary>A T2I parquet row: the encoded image and the captions JSON string.</summary>
/// <param name="Image">The <c>image</c> column's bytes (an encoded PNG/JPEG/...), or null when the cell is null.</param>
/// <param name="Captions">The <c>captions</c> column: a JSON object serialised as a string, or null.</param>
public sealed record T2IPayload(byte[]? Image, string? Captions) : RawPayload;

/// <summary>An editing parquet row: the image chain and the instructions between consecutive images.</summary>
/// <param name="Images">The <c>image_list</c> column: encoded images (null entries kept as null).</param>
/// <param name="Instructions">The <c>instruction_list</c> column as read: each entry should be a list of alternative
/// wordings (<c>IReadOnlyList&lt;string&gt;</c>); anything else is kept as is so the sample builder can reject it.</param>
public sealed record EditPayload(IReadOnlyList<byte[]?> Images, IReadOnlyList<object?> Instructions) : RawPayload;

/// <summary>A VLM JSONL line and the folder its relative image paths resolve against.</summary>
/// <param name="Line">The raw JSON line.</param>
/// <param name="ImageDirectory">The dataset's <c>data_dir</c>.</param>
/// <param name="LineNumber">1-based line number in the JSONL file.</param>
/// <param name="JsonlPath">The JSONL file.</param>
public sealed record VlmPayload(string Line, string ImageDirectory, long LineNumber, string JsonlPath) : RawPayload;

/// <summary>An image of a plain image folder and its caption.</summary>
/// <param name="ImagePath">The image file.</param>
/// <param name="Caption">Its caption (from the <c>.txt</c> beside it or the captions JSONL).</param>
public sealed record ImageFolderPayload(string ImagePath, string Caption) : RawPayload;
