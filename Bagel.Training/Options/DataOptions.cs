using Microsoft.Extensions.Configuration;

namespace Bagel.Training.Options;

/// <summary>
/// The data flags of the reference's <c>DataArguments</c> (training.md 5.1): same snake_case names (as configuration
/// keys) and the same defaults. Validate with <see cref="DataOptionsValidator"/>.
/// </summary>
public sealed class DataOptions
{
    /// <summary>Configuration section these options bind from by default: <c>data</c>.</summary>
    public const string SectionName = "data";

    /// <summary>YAML file that groups the data sets and weights them. Default <c>data/configs/example.yaml</c>.</summary>
    [ConfigurationKeyName("dataset_config_file")] public string DatasetConfigFile { get; set; } = "data/configs/example.yaml";

    /// <summary>
    /// Our extension, not a reference flag: the dataset registry file (YAML or JSON; group → dataset → paths and counts).
    /// The reference keeps this table in Python code (<c>data/dataset_info.py</c>); Bagel.NET reads it from a file.
    /// Default empty: <c>dataset_info.yaml</c> beside <see cref="DatasetConfigFile"/>.
    /// </summary>
    [ConfigurationKeyName("dataset_info_file")] public string DatasetInfoFile { get; set; } = "";

    /// <summary>Batches each data worker prepares ahead. Default <c>2</c>.</summary>
    [ConfigurationKeyName("prefetch_factor")] public int PrefetchFactor { get; set; } = 2;

    /// <summary>Data worker count (the CLI also takes the prefix <c>num_worker</c>). Default <c>4</c>.</summary>
    [ConfigurationKeyName("num_workers")] public int NumWorkers { get; set; } = 4;

    /// <summary>Raw samples with more tokens are skipped. Default <c>16384</c>.</summary>
    [ConfigurationKeyName("max_num_tokens_per_sample")] public int MaxNumTokensPerSample { get; set; } = 16384;

    /// <summary>Hard cap on the tokens of one packed batch. Default <c>36864</c>.</summary>
    [ConfigurationKeyName("max_num_tokens")] public int MaxNumTokens { get; set; } = 36864;

    /// <summary>Below this many tokens a batch prefers samples from the overflow buffer. Default <c>16384</c>.</summary>
    [ConfigurationKeyName("prefer_buffer_before")] public int PreferBufferBefore { get; set; } = 16384;

    /// <summary>Most samples held in the packer's overflow buffer. Default <c>50</c>.</summary>
    [ConfigurationKeyName("max_buffer_size")] public int MaxBufferSize { get; set; } = 50;

    /// <summary>Seed of the data-unit order (identical on every rank). Default <c>42</c>.</summary>
    [ConfigurationKeyName("data_seed")] public int DataSeed { get; set; } = 42;
}
