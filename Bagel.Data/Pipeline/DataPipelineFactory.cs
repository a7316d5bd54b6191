using Bagel.Data.Config;
using Bagel.Data.Diagnostics;
using Bagel.Data.Images;
using Bagel.Data.Tokenization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bagel.Data.Pipeline;

/// <summary>
/// Builds a <see cref="DataPipeline"/> from a dataset registry (<c>DATASET_INFO</c>) and a dataset mix (the YAML):
/// per group the right source (<c>t2i_pretrain</c> → <see cref="Sources.T2IParquetSource"/>, <c>unified_edit</c> →
/// <see cref="Sources.EditParquetSource"/> with the merged parquet_info of its datasets or their footers,
/// <c>vlm_sft</c> → <see cref="Sources.VlmJsonlSource"/> with <c>shuffle_lines</c>, <c>t2i_image_folder</c> →
/// <see cref="Sources.ImageFolderSource"/>, or an application's kind from <see cref="RegisterGroupKind"/>) and its
/// <see cref="Samples.SampleBuilder"/> with the group's transforms, weight, <c>is_mandatory</c> and
/// <c>resume_data_status</c>. Every check that can be made before training starts is made here: image sizes against
/// the model's position grids, and enough units (files, row groups, lines) for every rank × worker.
/// </summary>
public sealed class DataPipelineFactory
{
    private readonly Dictionary<string, DataGroupKind> _kinds = BuiltInGroupKinds.All.ToDictionary(k => k.Name, StringComparer.Ordinal);
    private readonly ILogger _logger;

    /// <summary>Creates a factory.</summary>
    /// <param name="tokenizer">The tokenizer with BAGEL's special tokens (<see cref="BagelSpecialTokens.Apply"/>).</param>
    /// <param name="options">Workers, seeds, rank and packing (default: <see cref="DataPipelineOptions"/> defaults).</param>
    /// <param name="decodeOptions">Image decoding policies (default: <see cref="ImageDecodeOptions"/> defaults: EXIF
    /// orientation applied, truncated images skipped, the reference's 200 M pixel limit).</param>
    /// <param name="modelLimits">The model's image limits checked at creation (default: <c>max_latent_size</c> and
    /// <c>max_num_patch_per_side</c> of <see cref="DataPipelineOptions.Packing"/>, which must match the model's).</param>
    /// <param name="logger">Receives skip warnings and the sources' messages (default: none).</param>
    public DataPipelineFactory(BagelTokenizerSetup tokenizer, DataPipelineOptions? options = null, ImageDecodeOptions? decodeOptions = null,
        ModelImageLimits? modelLimits = null, ILogger? logger = null)
    {
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Options = options ?? new DataPipelineOptions();
        Options.Validate();
        DecodeOptions = decodeOptions ?? new ImageDecodeOptions();
        ModelLimits = modelLimits ?? new ModelImageLimits(Options.Packing.MaxLatentSize, Options.Packing.MaxNumPatchPerSide,
            Options.Packing.PixelsPerLatentToken, InterpolatePos: Options.Packing.InterpolatePos);
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The tokenizer.</summary>
    public BagelTokenizerSetup Tokenizer { get; }

    /// <summary>The pipeline options.</summary>
    public DataPipelineOptions Options { get; }

    /// <summary>The image decoding options.</summary>
    public ImageDecodeOptions DecodeOptions { get; }

    /// <summary>The model's image limits every transform is checked against.</summary>
    public ModelImageLimits ModelLimits { get; }

    /// <summary>The group kinds this factory builds (the SDK's four and any registered).</summary>
    public IReadOnlyCollection<string> GroupKinds => _kinds.Keys;

    /// <summary>The kinds added with <see cref="RegisterGroupKind"/>; pass them to the registry and mix loaders.</summary>
    public IReadOnlyList<string> CustomGroupKinds => [.. _kinds.Keys.Except(DatasetGroupKinds.All, StringComparer.Ordinal)];

    /// <summary>Adds an application's group kind: its YAML blocks and registry groups are then accepted and built
    /// with its factories.</summary>
    /// <param name="kind">The kind; its name must not be one already registered.</param>
    /// <returns>This factory.</returns>
    /// <exception cref="ArgumentException">The name is taken or empty.</exception>
    public DataPipelineFactory RegisterGroupKind(DataGroupKind kind)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentException.ThrowIfNullOrEmpty(kind.Name);
        ArgumentNullException.ThrowIfNull(kind.CreateSource);
        if (!_kinds.TryAdd(kind.Name, kind))
            throw new ArgumentException($"Group kind '{kind.Name}' is already registered; choose another name.", nameof(kind));
        return this;
    }

    /// <summary>Loads the dataset registry and mix files (accepting the registered custom kinds) and builds the pipeline.</summary>
    /// <param name="datasetInfoPath">The registry file (JSON or YAML).</param>
    /// <param name="mixConfigPath">The dataset mix YAML.</param>
    /// <param name="skips">Where skipped records are counted (default: new counters logging to this factory's logger).</param>
    /// <param name="cancellationToken">Cancels slow listings.</param>
    /// <returns>The pipeline; read it with <see cref="DataPipeline.ReadAsync"/>.</returns>
    /// <exception cref="DataConfigException">A configuration problem, naming the file and key.</exception>
    /// <exception cref="DataConfigAggregateException">Several configuration problems.</exception>
    public Task<DataPipeline> CreateFromFilesAsync(string datasetInfoPath, string mixConfigPath, DataSkipCounters? skips = null, CancellationToken cancellationToken = default)
    {
        var registry = DatasetInfoRegistry.Load(datasetInfoPath, CustomGroupKinds);
        var mix = DatasetMixConfig.Load(mixConfigPath, registry, CustomGroupKinds);
        return CreateAsync(registry, mix, skips, cancellationToken);
    }

    /// <summary>Builds the pipeline for a registry and a mix (loaded from files or made in code).</summary>
    /// <param name="registry">The dataset registry.</param>
    /// <param name="mix">The dataset mix; its groups keep their order (the order of the weight table).</param>
    /// <param name="skips">Where skipped records are counted (default: new counters logging to this factory's logger).</param>
    /// <param name="cancellationToken">Cancels slow listings (parquet footers).</param>
    /// <returns>The pipeline; read it with <see cref="DataPipeline.ReadAsync"/>.</returns>
    /// <exception cref="DataConfigException">A configuration problem, naming the file and key.</exception>
    /// <exception cref="DataConfigAggregateException">Several configuration problems (for example image sizes).</exception>
    public async Task<DataPipeline> CreateAsync(DatasetInfoRegistry registry, DatasetMixConfig mix, DataSkipCounters? skips = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(mix);
        skips ??= new DataSkipCounters(_logger);
        foreach (DatasetGroupConfig group in mix.Groups.Where(g => !_kinds.ContainsKey(g.Name)))
            throw new DataConfigException(mix.SourceFile, group.Name,
                $"no group kind '{group.Name}' is registered; known kinds: {string.Join(", ", _kinds.Keys.Order(StringComparer.Ordinal))} (add one with {nameof(RegisterGroupKind)}).");
        mix.ValidateAgainst(ModelLimits, _kinds.Values.Where(k => k.MainStreamIsVit).Select(k => k.Name));

        var decoder = new ImageDecoder(DecodeOptions);
        var groups = new List<DataGroup>();
        int unitsNeeded = Options.WorldSize * Math.Max(1, Options.NumWorkers);
        foreach (DatasetGroupConfig config in mix.Groups)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (config.NumUsedData.Count != config.DatasetNames.Count)
                throw new DataConfigException(mix.SourceFile, $"{config.Name}.num_used_data",
                    $"has {config.NumUsedData.Count} entries but dataset_names has {config.DatasetNames.Count}; give one per dataset.");
            var datasets = config.DatasetNames.Select(name => registry.Get(config.Name, name)).ToList();
            var context = new DataGroupContext(config, datasets, Tokenizer, decoder, skips, Options, _logger);
            DataGroupKind kind = _kinds[config.Name];
            var source = await kind.CreateSource(context, cancellationToken).ConfigureAwait(false);
            if (source.Group != config.Name)
                throw new InvalidOperationException($"The source factory of group kind '{kind.Name}' made a source for group '{source.Group}'; it must use the group's name.");
            if (source.UnitCount < unitsNeeded)
                throw new DataConfigException(mix.SourceFile, $"{config.Name}.num_used_data",
                    $"gives {source.UnitCount} unit(s) (files for T2I, row groups for editing, lines for VLM, images for image folders) but " +
                    $"{Options.WorldSize} rank(s) x {Math.Max(1, Options.NumWorkers)} worker(s) need at least {unitsNeeded}, one each. " +
                    "Raise num_used_data or lower num_workers.");
            var builder = kind.CreateBuilder?.Invoke(context) ?? context.CreateStandardBuilder();
            groups.Add(new DataGroup(config.Name, config.Weight, config.IsMandatory, source, builder, config.ResumeDataStatus));
        }
        return new DataPipeline(groups, Tokenizer.SpecialTokenIds, Options, skips);
    }
}
