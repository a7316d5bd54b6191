using Bagel.Data.Images;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.Inference;

/// <summary>Which weights of a checkpoint to generate with.</summary>
public enum CheckpointWeights
{
    /// <summary>The EMA weights (<c>ema.safetensors</c>), as the reference's inference loads; the default.</summary>
    Ema,

    /// <summary>The trained weights (<c>model.safetensors</c>).</summary>
    Model,
}

/// <summary>How <see cref="BagelPipeline.Load"/> builds a generator.</summary>
public sealed record BagelPipelineOptions
{
    /// <summary>EMA (default) or the trained weights.</summary>
    public CheckpointWeights Weights { get; init; } = CheckpointWeights.Ema;

    /// <summary>The VAE-stream transform of input images (the inferencer's <c>vae_transform</c>); null: the
    /// reference's <c>ImageTransform(1024, 512, 16)</c> for a released model, the example data's sizes (max 64,
    /// min 32, stride 16) for the tiny preset, the largest side capped at <c>max_latent_size</c> tokens.</summary>
    public ImageTransformOptions? VaeTransform { get; init; }

    /// <summary>The ViT-stream transform (<c>vit_transform</c>); null: <c>ImageTransform(980, 224, 14)</c> for a
    /// released model, (56, 28, 14) for the tiny preset.</summary>
    public ImageTransformOptions? VitTransform { get; init; }

    /// <summary>Where loading is logged; default nowhere.</summary>
    public ILogger? Logger { get; init; }
}
