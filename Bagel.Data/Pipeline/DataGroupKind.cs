using Bagel.Data.Config;
using Bagel.Data.Diagnostics;
using Bagel.Data.Images;
using Bagel.Data.Samples;
using Bagel.Data.Sources;
using Bagel.Data.Tokenization;
using Microsoft.Extensions.Logging;

namespace Bagel.Data.Pipeline;

/// <summary>Everything a group kind's factories need to build one configured group.</summary>
/// <param name="Config">The group's block of the dataset mix (its name is the kind).</param>
/// <param name="Datasets">The registry entries of <see cref="DatasetGroupConfig.DatasetNames"/>, in that order.</param>
/// <param name="Tokenizer">The tokenizer with BAGEL's special tokens.</param>
/// <param name="Decoder">The shared image decoder (its options hold the EXIF, truncation and size policies).</param>
/// <param name="Skips">Where bad records are counted.</param>
/// <param name="Options">The pipeline's options (rank, workers, seeds, packing).</param>
/// <param name="Logger">For the sources' messages.</param>
public sealed record DataGroupContext(DatasetGroupConfig Config, IReadOnlyList<DatasetInfoEntry> Datasets, BagelTokenizerSetup Tokenizer,
    ImageDecoder Decoder, DataSkipCounters Skips, DataPipelineOptions Options, ILogger Logger)
{
    /// <summary>
    /// The SDK's <see cref="SampleBuilder"/> for this group: <c>image_transform_args</c> as the main transform and
    /// <c>vit_image_transform_args</c> (when set) as the ViT copy. A custom source whose records are the SDK's payloads
    /// (<see cref="T2IPayload"/>, <see cref="EditPayload"/>, <see cref="VlmPayload"/>, <see cref="ImageFolderPayload"/>) can use it as is.
    /// </summary>
    /// <returns>A new builder.</returns>
    public SampleBuilder CreateStandardBuilder() =>
        new(Tokenizer.Tokenizer, Decoder, new ImageTransform(Config.ImageTransform),
            Config.VitImageTransform is { } vit ? new ImageTransform(vit) : null, Skips);
}

/// <summary>Creates the record source of one configured group.</summary>
/// <param name="context">The group's configuration and shared services.</param>
/// <param name="cancellationToken">Cancels slow listings (for example reading parquet footers).</param>
/// <returns>The source; one instance serves every worker.</returns>
public delegate ValueTask<RawSampleSource> DataSourceFactory(DataGroupContext context, CancellationToken cancellationToken);

/// <summary>Creates the sample builder of one configured group.</summary>
/// <param name="context">The group's configuration and shared services.</param>
/// <returns>The builder; one instance serves every worker, so it must be thread-safe.</returns>
public delegate ISampleBuilder SampleBuilderFactory(DataGroupContext context);

/// <summary>
/// A dataset group kind: the YAML top-level key and how to build its source and sample builder. The SDK registers
/// <c>t2i_pretrain</c>, <c>unified_edit</c>, <c>vlm_sft</c> and <c>t2i_image_folder</c>; an application adds its
/// own with <see cref="DataPipelineFactory.RegisterGroupKind"/>. A custom kind's YAML block accepts the common keys
/// (<c>dataset_names</c>, <c>num_used_data</c>, <c>weight</c>, <c>is_mandatory</c>, <c>image_transform_args</c>,
/// <c>resume_data_status</c>), and its registry entries the usual paths.
/// </summary>
/// <param name="Name">The kind's name (the YAML top-level key and the registry group name).</param>
/// <param name="CreateSource">Builds the group's record source.</param>
/// <param name="CreateBuilder">Builds the group's sample builder; null (default) uses <see cref="DataGroupContext.CreateStandardBuilder"/>.</param>
/// <param name="MainStreamIsVit">Whether <c>image_transform_args</c> feeds the ViT (checked against the ViT's
/// 70-patch side and stride 14) rather than the VAE (default false: <c>max_latent_size</c> and stride 16).</param>
public sealed record DataGroupKind(string Name, DataSourceFactory CreateSource, SampleBuilderFactory? CreateBuilder = null, bool MainStreamIsVit = false);
