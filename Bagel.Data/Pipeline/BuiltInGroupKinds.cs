using Bagel.Core.Randomness;
using Bagel.Data.Config;
using Bagel.Data.Sources;

namespace Bagel.Data.Pipeline;

/// <summary>The SDK's four group kinds: the reference's three (<c>DATASET_REGISTRY</c>) and the plain image folder.</summary>
internal static class BuiltInGroupKinds
{
    /// <summary>The random purpose of <c>shuffle_lines</c>, seeded with <c>shuffle_seed</c> (not <c>data_seed</c>), as the reference.</summary>
    public const string ShuffleLinesPurpose = "data.shuffle_lines";

    public static IReadOnlyList<DataGroupKind> All { get; } =
    [
        new(DatasetGroupKinds.T2IPretrain, CreateT2I),
        new(DatasetGroupKinds.UnifiedEdit, CreateEditAsync),
        new(DatasetGroupKinds.VlmSft, CreateVlm, MainStreamIsVit: true),
        new(DatasetGroupKinds.T2IImageFolder, CreateImageFolder),
    ];

    private static ValueTask<RawSampleSource> CreateT2I(DataGroupContext context, CancellationToken cancellationToken) =>
        ValueTask.FromResult<RawSampleSource>(new T2IParquetSource(context.Config.Name, [.. context.Datasets.Select(d => d.DataDir)],
            context.Config.NumUsedData, context.Logger));

    private static async ValueTask<RawSampleSource> CreateEditAsync(DataGroupContext context, CancellationToken cancellationToken)
    {
        var config = context.Config;
        return await EditParquetSource.CreateAsync(config.Name, [.. context.Datasets.Select(d => d.DataDir)], config.NumUsedData,
            await MergedParquetInfoAsync(context, cancellationToken).ConfigureAwait(false), context.Logger, context.Skips, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// One lookup for every selected shard of the group: each dataset's shards resolved through its own parquet_info
    /// (so one dataset's file-name fallback cannot match another's shards), footers for shards it does not describe.
    /// Null when no dataset has a parquet_info (the source then reads every footer itself).
    /// </summary>
    private static async Task<ParquetInfo?> MergedParquetInfoAsync(DataGroupContext context, CancellationToken cancellationToken)
    {
        if (context.Datasets.All(d => d.ParquetInfoPath is null)) return null;
        var facts = new Dictionary<string, ParquetShardInfo>(StringComparer.Ordinal);
        for (int i = 0; i < context.Datasets.Count; i++)
        {
            DatasetInfoEntry dataset = context.Datasets[i];
            ParquetInfo? own = dataset.ParquetInfoPath is { } path ? ParquetInfo.Load(path) : null;
            foreach (string shard in ParquetFiles.Select(dataset.DataDir, context.Config.NumUsedData[i], context.Config.Name).Distinct(StringComparer.Ordinal))
            {
                if (facts.ContainsKey(shard)) continue;
                ParquetShardInfo? known = own?.Find(shard);
                if (known is null)
                {
                    try
                    {
                        known = await ParquetInfo.ReadFooterAsync(shard, cancellationToken).ConfigureAwait(false);
                    }
                    catch (DataConfigException)
                    {
                        continue; // left out here; the source reads the footer again and counts the corrupt file
                    }
                }
                facts[shard] = known;
            }
        }
        return ParquetInfo.FromFacts(facts);
    }

    private static ValueTask<RawSampleSource> CreateVlm(DataGroupContext context, CancellationToken cancellationToken)
    {
        var config = context.Config;
        SeededRandomSource? shuffle = config.ShuffleLines ? SeededRandomSource.ForPurpose(config.ShuffleSeed, ShuffleLinesPurpose) : null;
        try
        {
            Func<int, int>? below = shuffle is null ? null : n => (int)shuffle.NextInt(0, n);
            var jsonl = context.Datasets.Select((d, i) => d.JsonlPath ?? throw new DataConfigException(null, $"{config.Name}.{config.DatasetNames[i]}.jsonl_path",
                "is required for a vlm_sft dataset.")).ToList();
            return ValueTask.FromResult<RawSampleSource>(new VlmJsonlSource(config.Name, jsonl, [.. context.Datasets.Select(d => d.DataDir)],
                config.NumUsedData, below, context.Logger));
        }
        finally
        {
            shuffle?.Dispose(); // the lines are shuffled in the constructor; the stream is not used afterwards
        }
    }

    private static ValueTask<RawSampleSource> CreateImageFolder(DataGroupContext context, CancellationToken cancellationToken)
    {
        var config = context.Config;
        if (context.Datasets.Count != 1)
            throw new DataConfigException(null, $"{config.Name}.dataset_names",
                $"lists {context.Datasets.Count} datasets; a {DatasetGroupKinds.T2IImageFolder} group reads exactly one image folder (merge the folders, or register a custom group kind).");
        DatasetInfoEntry dataset = context.Datasets[0];
        try
        {
            return ValueTask.FromResult<RawSampleSource>(new ImageFolderSource(config.Name, dataset.DataDir, dataset.CaptionsPath, config.NumUsedData[0], context.Logger));
        }
        catch (Exception e) when (e is InvalidDataException or DirectoryNotFoundException)
        {
            throw new DataConfigException(null, $"{config.Name}.dataset_names", $"dataset '{config.DatasetNames[0]}': {e.Message}", innerException: e);
        }
    }
}
