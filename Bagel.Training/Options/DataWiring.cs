using Bagel.Data.Config;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;

namespace Bagel.Training.Options;

/// <summary>
/// How the reference's trainer wires its arguments into the data pipeline (training.md 5.1): token budgets from the
/// data and training flags, <c>interpolate_pos</c> from the model flags; with <c>visual_und</c> the ViT patch limit,
/// with <c>visual_gen</c> the latent size and the three dropout probabilities; a branch that is off leaves the data
/// defaults (dropout 0.1 / vit 0.4 / vae 0.1). <c>vit_patch_size</c> and <c>vae_image_downsample = latent_patch_size·8</c>
/// feed the image transforms, see <see cref="VaeImageDownsample"/>.
/// </summary>
public static class DataWiring
{
    /// <summary>FLUX VAE spatial downsampling per latent pixel; times latent_patch_size gives the image pixels per latent token.</summary>
    public const int VaeDownsample = 8;

    /// <summary>The packing options of a run with <paramref name="configuration"/>.</summary>
    public static PackingOptions ToPackingOptions(TrainingConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        (ModelOptions model, DataOptions data, TrainingOptions training) = (configuration.Model, configuration.Data, configuration.Training);
        var options = new PackingOptions
        {
            ExpectedNumTokens = training.ExpectedNumTokens,
            MaxNumTokens = data.MaxNumTokens,
            MaxNumTokensPerSample = data.MaxNumTokensPerSample,
            PreferBufferBefore = data.PreferBufferBefore,
            MaxBufferSize = data.MaxBufferSize,
            InterpolatePos = model.InterpolatePos,
            PixelsPerLatentToken = VaeImageDownsample(model),
            SpecialTokenLoss = training.SpecialTokenLoss,
        };
        if (training.VisualUnd) options = options with { MaxNumPatchPerSide = model.VitMaxNumPatchPerSide };
        if (training.VisualGen)
            options = options with
            {
                MaxLatentSize = model.MaxLatentSize,
                TextCondDropoutProb = model.TextCondDropoutProb,
                VaeCondDropoutProb = model.VaeCondDropoutProb,
                VitCondDropoutProb = model.VitCondDropoutProb,
            };
        return options;
    }

    /// <summary>
    /// The data pipeline options of a run with <paramref name="configuration"/>: <c>num_workers</c>,
    /// <c>prefetch_factor</c> and <c>data_seed</c> from the data flags, the packing from <see cref="ToPackingOptions"/>,
    /// and this process's rank and world size from <see cref="Distributed.DistributedRun.Current"/> (rank 0 of 1 unless the
    /// entry point set a process group: each rank reads its own shard of every source). Build the pipeline and the trainer from the same
    /// configuration, so that the trainer saves the data status with the pipeline's worker count.
    /// </summary>
    public static DataPipelineOptions ToPipelineOptions(TrainingConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        DataOptions data = configuration.Data;
        return new DataPipelineOptions
        {
            NumWorkers = data.NumWorkers,
            PrefetchFactor = data.PrefetchFactor,
            DataSeed = data.DataSeed,
            Packing = ToPackingOptions(configuration),
            Rank = Distributed.DistributedRun.Current.Rank,
            WorldSize = Distributed.DistributedRun.Current.WorldSize,
        };
    }

    /// <summary>
    /// The model's image limits the dataset mix is checked against at start-up (pass them to
    /// <c>DataPipelineFactory</c>): <c>max_latent_size</c>, <c>vit_max_num_patch_per_side</c>, <c>vit_patch_size</c> and
    /// <see cref="VaeImageDownsample"/>, so a VAE stream must use stride <c>latent_patch_size·8</c>.
    /// </summary>
    public static ModelImageLimits ToModelImageLimits(TrainingConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ModelOptions model = configuration.Model;
        return new ModelImageLimits(model.MaxLatentSize, model.VitMaxNumPatchPerSide, VaeImageDownsample(model), model.VitPatchSize, model.InterpolatePos);
    }

    /// <summary>Image pixels per latent token side: <c>latent_patch_size · 8</c> (the reference's <c>vae_image_downsample</c>).</summary>
    public static int VaeImageDownsample(ModelOptions model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.LatentPatchSize * VaeDownsample;
    }
}
