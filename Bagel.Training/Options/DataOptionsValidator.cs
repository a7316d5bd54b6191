using Microsoft.Extensions.Options;

namespace Bagel.Training.Options;

/// <summary>Validates <see cref="DataOptions"/>, reporting every bad value at once.</summary>
public sealed class DataOptionsValidator : IValidateOptions<DataOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, DataOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var f = new OptionFailures();
        f.NotEmpty("dataset_config_file", options.DatasetConfigFile);
        f.Positive("prefetch_factor", options.PrefetchFactor);
        f.NonNegative("num_workers", options.NumWorkers);
        f.Positive("max_num_tokens_per_sample", options.MaxNumTokensPerSample);
        f.Positive("max_num_tokens", options.MaxNumTokens);
        f.NonNegative("prefer_buffer_before", options.PreferBufferBefore);
        f.NonNegative("max_buffer_size", options.MaxBufferSize);
        if (options.MaxNumTokensPerSample > options.MaxNumTokens)
            f.Add($"'max_num_tokens_per_sample' ({options.MaxNumTokensPerSample}) is larger than 'max_num_tokens' ({options.MaxNumTokens}); " +
                  "such a sample could never fit in a batch. Lower the first or raise the second.");
        return f.ToResult();
    }
}
