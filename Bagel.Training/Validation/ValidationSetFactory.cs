using Bagel.Core.Batching;
using Bagel.Data.Config;
using Bagel.Data.Pipeline;
using Bagel.Training.Options;

namespace Bagel.Training.Validation;

/// <summary>
/// Builds a <see cref="ValidationSet"/> from a dataset mix (the same YAML format as <c>dataset_config_file</c>, usually
/// a separate held-out file, <c>validation_config_file</c>): one <see cref="DataPipeline"/> per group of the mix, made
/// by the given <see cref="DataPipelineFactory"/> with that group alone (weight 1, not mandatory), from which the first
/// <c>batchesPerGroup</c> packed batches are taken; the pipeline's workers are then stopped. The batches are fixed from
/// then on: same samples, same timesteps, same conditioning dropouts at every evaluation. The factory's options apply
/// (workers, data seed, packing, including the dropout probabilities); every worker needs a unit of each group, so a
/// small held-out mix may need a factory with fewer workers than training's. A pipeline streams its data without end,
/// so a group with fewer samples than <c>batchesPerGroup</c> batches need repeats them.
/// </summary>
public static class ValidationSetFactory
{
    /// <summary>Builds the set from a registry and a mix loaded or made in code.</summary>
    /// <param name="factory">Makes the pipelines (tokenizer, workers, seeds, packing, group kinds).</param>
    /// <param name="registry">The dataset registry the mix refers to.</param>
    /// <param name="mix">The held-out mix; one validation group per mix group, in the mix's order.</param>
    /// <param name="batchesPerGroup">Packed batches per group (<c>validation_batches</c>); at least 1.</param>
    /// <param name="cancellationToken">Cancels the building.</param>
    /// <returns>The set (the caller disposes it).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchesPerGroup"/> is below 1.</exception>
    /// <exception cref="DataConfigException">A group cannot be built (missing files, too few units, bad image sizes).</exception>
    /// <exception cref="DataPipelineException">A data worker failed while reading a group.</exception>
    public static async Task<ValidationSet> CreateAsync(DataPipelineFactory factory, DatasetInfoRegistry registry, DatasetMixConfig mix, int batchesPerGroup,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(mix);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchesPerGroup, 1);
        var groups = new List<ValidationGroup>();
        try
        {
            foreach (DatasetGroupConfig config in mix.Groups)
            {
                // The group alone: weight 0 in a training mix would make it unsampleable, and mandatory means nothing alone.
                var single = new DatasetMixConfig([config with { Weight = 1, IsMandatory = false }], mix.SourceFile);
                DataPipeline pipeline = await factory.CreateAsync(registry, single, cancellationToken: cancellationToken).ConfigureAwait(false);
                groups.Add(new ValidationGroup(config.Name, await TakeAsync(pipeline, batchesPerGroup, cancellationToken).ConfigureAwait(false)));
            }
            return new ValidationSet(groups);
        }
        catch
        {
            foreach (ValidationGroup group in groups)
                foreach (PackedBatch batch in group.Batches) batch.Dispose();
            throw;
        }
    }

    /// <summary>Loads the registry and the mix YAML (accepting the factory's custom group kinds) and builds the set.</summary>
    /// <param name="factory">Makes the pipelines.</param>
    /// <param name="datasetInfoPath">The dataset registry file (JSON or YAML).</param>
    /// <param name="mixConfigPath">The held-out dataset mix YAML.</param>
    /// <param name="batchesPerGroup">Packed batches per group; at least 1.</param>
    /// <param name="cancellationToken">Cancels the building.</param>
    /// <returns>The set (the caller disposes it).</returns>
    /// <exception cref="DataConfigException">A file or key is wrong; the message names it.</exception>
    /// <exception cref="DataConfigAggregateException">Several configuration problems.</exception>
    public static Task<ValidationSet> CreateFromFilesAsync(DataPipelineFactory factory, string datasetInfoPath, string mixConfigPath, int batchesPerGroup,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(factory);
        var registry = DatasetInfoRegistry.Load(datasetInfoPath, factory.CustomGroupKinds);
        var mix = DatasetMixConfig.Load(mixConfigPath, registry, factory.CustomGroupKinds);
        return CreateAsync(factory, registry, mix, batchesPerGroup, cancellationToken);
    }

    /// <summary>
    /// The set the training options ask for: <c>validation_config_file</c> with <c>validation_batches</c> batches per
    /// group, or null when <c>validation_config_file</c> is empty (validation off). Pass the result with
    /// <c>validate_every</c> to <c>TrainerBuilder.UseValidation</c>.
    /// </summary>
    /// <param name="factory">Makes the pipelines.</param>
    /// <param name="datasetInfoPath">The dataset registry the validation mix refers to.</param>
    /// <param name="options">The training options.</param>
    /// <param name="cancellationToken">Cancels the building.</param>
    /// <returns>The set, or null when validation is off.</returns>
    public static async Task<ValidationSet?> CreateFromOptionsAsync(DataPipelineFactory factory, string datasetInfoPath, TrainingOptions options,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ValidationConfigFile)) return null;
        return await CreateFromFilesAsync(factory, datasetInfoPath, options.ValidationConfigFile, options.ValidationBatches, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<IReadOnlyList<PackedBatch>> TakeAsync(DataPipeline pipeline, int count, CancellationToken cancellationToken)
    {
        var batches = new List<PackedBatch>(count);
        try
        {
            // Leaving the loop disposes the enumerator, which stops and awaits the pipeline's workers.
            await foreach (PackedBatch batch in pipeline.ReadAsync(null, cancellationToken).ConfigureAwait(false))
            {
                batches.Add(batch);
                if (batches.Count == count) break;
            }
        }
        catch
        {
            foreach (PackedBatch batch in batches) batch.Dispose();
            throw;
        }
        return batches;
    }
}
