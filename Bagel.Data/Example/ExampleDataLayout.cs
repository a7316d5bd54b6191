namespace Bagel.Data.Example;

/// <summary>
/// The reference's <c>bagel_example</c> layout (training.md §6), as paths relative to the dataset folder, and the
/// registry names the generated <c>dataset_info.yaml</c> and <c>example.yaml</c> use.
/// </summary>
public static class ExampleDataLayout
{
    /// <summary>T2I parquet shards (<c>chunk_&lt;k&gt;.parquet</c>).</summary>
    public const string T2IFolder = "t2i";

    /// <summary>Editing parquet shards (<c>chunk_&lt;k&gt;.parquet</c>).</summary>
    public const string EditFolder = "editing/seedxedit_multi";

    /// <summary>The editing shards' parquet_info JSON (keys relative to its own folder, so the dataset can move).</summary>
    public const string EditParquetInfo = "editing/parquet_info/seedxedit_multi.json";

    /// <summary>VLM picture files.</summary>
    public const string VlmImagesFolder = "vlm/images";

    /// <summary>VLM conversations, one JSON object per line.</summary>
    public const string VlmJsonl = "vlm/llava_ov_si.jsonl";

    /// <summary>The dataset registry (<c>DATASET_INFO</c>) with paths relative to the dataset folder.</summary>
    public const string DatasetInfoFile = "dataset_info.yaml";

    /// <summary>The dataset mix (the reference's <c>data/configs/example.yaml</c> keys).</summary>
    public const string MixConfigFile = "example.yaml";

    /// <summary>The T2I dataset's registry name (group <c>t2i_pretrain</c>).</summary>
    public const string T2IDatasetName = "t2i";

    /// <summary>The editing dataset's registry name (group <c>unified_edit</c>).</summary>
    public const string EditDatasetName = "seedxedit_multi";

    /// <summary>The VLM dataset's registry name (group <c>vlm_sft</c>).</summary>
    public const string VlmDatasetName = "llava_ov";

    /// <summary>The name of shard <paramref name="index"/>, as the maintainer's writer names them.</summary>
    /// <param name="index">0-based shard index.</param>
    /// <returns><c>chunk_&lt;index&gt;.parquet</c>.</returns>
    public static string ShardName(int index) => $"chunk_{index}.parquet";
}

/// <summary>What <see cref="ExampleDataWriter.WriteAsync"/> wrote.</summary>
/// <param name="Folder">The dataset folder (absolute).</param>
/// <param name="DatasetInfoPath">Its <c>dataset_info.yaml</c>.</param>
/// <param name="MixConfigPath">Its <c>example.yaml</c>.</param>
/// <param name="T2IRows">T2I rows over all shards.</param>
/// <param name="EditRows">Editing rows over all shards.</param>
/// <param name="EditImages">Pictures over all edit chains.</param>
/// <param name="VlmLines">VLM conversations.</param>
/// <param name="Files">Files written.</param>
/// <param name="Bytes">Their total size.</param>
public sealed record ExampleDataSummary(string Folder, string DatasetInfoPath, string MixConfigPath, long T2IRows, long EditRows, long EditImages,
    long VlmLines, int Files, long Bytes);

/// <summary>Progress of a write: reported after each file.</summary>
/// <param name="FilesWritten">Files finished so far.</param>
/// <param name="TotalFiles">Files the dataset will have.</param>
/// <param name="LastFile">The file just finished, relative to the dataset folder.</param>
public readonly record struct ExampleDataProgress(int FilesWritten, int TotalFiles, string LastFile);
