using Bagel.Data.Packing;

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

    /// <summary>Image pixels per latent token side: <c>latent_patch_size · 8</c> (the reference's <c>vae_image_downsample</c>).</summary>
    public static int VaeImageDownsample(ModelOptions model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.LatentPatchSize * VaeDownsample;
    }
}
