using Bagel.Models.FluxVae;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;

namespace Bagel.Models.Bagel;

/// <summary>
/// The reference's <c>BagelConfig</c> (modeling/bagel/bagel.py, model.md §1): which branches exist and the sizes
/// of the glue modules. The part configs are the ones the parts are built from: the LLM config after
/// <see cref="Qwen2Config.WithBagelOverrides"/> and the ViT config after <see cref="SiglipVisionConfig.WithBagelOverrides"/>.
/// </summary>
public sealed record BagelConfig
{
    /// <summary>Reference <c>latent_patch_size</c> default: 2×2 latent pixels per generation token.</summary>
    public const int DefaultLatentPatchSize = LatentPatchifier.DefaultPatchSize;

    /// <summary>Reference <c>max_latent_size</c> default: 32 tokens per side (the released model uses 64 for 1024-px data).</summary>
    public const int DefaultMaxLatentSize = 32;

    /// <summary>Reference <c>vit_max_num_patch_per_side</c> default: 70 (980 px / 14 px patches).</summary>
    public const int DefaultVitMaxNumPatchPerSide = 70;

    /// <summary>Reference <c>connector_act</c> default and the only activation <see cref="MlpConnector"/> implements.</summary>
    public const string DefaultConnectorAct = "gelu_pytorch_tanh";

    /// <summary><c>visual_gen</c>: build the generation branch (time embedder, vae2llm, llm2vae, latent table). Default true.</summary>
    public bool VisualGen { get; init; } = true;

    /// <summary><c>visual_und</c>: build the understanding branch (SigLIP, connector, ViT table). Default true.</summary>
    public bool VisualUnd { get; init; } = true;

    /// <summary><c>llm_config</c>: the language model's config (required).</summary>
    public required Qwen2Config LlmConfig { get; init; }

    /// <summary><c>vit_config</c>: the SigLIP config; required when <see cref="VisualUnd"/>.</summary>
    public SiglipVisionConfig? VitConfig { get; init; }

    /// <summary><c>vae_config</c>: the autoencoder's shape (latent channels); required when <see cref="VisualGen"/>.
    /// The VAE itself is not part of the model.</summary>
    public FluxVaeConfig? VaeConfig { get; init; }

    /// <summary><c>latent_patch_size</c> (default 2).</summary>
    public int LatentPatchSize { get; init; } = DefaultLatentPatchSize;

    /// <summary><c>max_latent_size</c> (default 32): the latent position table covers this many tokens per side.</summary>
    public int MaxLatentSize { get; init; } = DefaultMaxLatentSize;

    /// <summary><c>vit_max_num_patch_per_side</c> (default 70): the ViT position table side.</summary>
    public int VitMaxNumPatchPerSide { get; init; } = DefaultVitMaxNumPatchPerSide;

    /// <summary><c>connector_act</c> (default and only supported value "gelu_pytorch_tanh").</summary>
    public string ConnectorAct { get; init; } = DefaultConnectorAct;

    /// <summary><c>interpolate_pos</c> (default false). It only changes how the data pipeline computes position ids;
    /// the model keeps it for the record.</summary>
    public bool InterpolatePos { get; init; }

    /// <summary><c>timestep_shift</c> s (default 1.0, no shift): t ← s·t / (1 + (s − 1)·t).</summary>
    public double TimestepShift { get; init; } = FlowMatching.DefaultTimestepShift;

    /// <summary>The reference's <c>use_moe</c>: the LLM has MoE or MoT layers (gen tokens take their own weights).</summary>
    public bool UseMoe => LlmConfig.UseMoe;

    /// <summary>Features of one generation token: p²·z (64 for FLUX latents with 2×2 patches); 0 without a VAE config.</summary>
    public int PatchLatentDim => VaeConfig is null ? 0 : LatentPatchSize * LatentPatchSize * VaeConfig.ZChannels;

    /// <summary>The limits a packed batch must respect for this model (for <c>PackedBatch.Validate</c>).</summary>
    public global::Bagel.Core.Batching.PackedBatchLimits BatchLimits => new()
    {
        MaxLatentSize = VisualGen ? MaxLatentSize : null,
        VitMaxPatchesPerSide = VisualUnd ? VitMaxNumPatchPerSide : null,
        InterpolatedLatentPositions = InterpolatePos,
        VocabularySize = LlmConfig.VocabSize,
    };

    /// <summary>Checks the config; reports every problem at once.</summary>
    /// <exception cref="BagelConfigException">A required part config is missing or an option is unsupported.</exception>
    public void Validate()
    {
        var problems = new List<string>();
        if (LlmConfig is null) problems.Add("llm_config is missing");
        if (VisualUnd && VitConfig is null) problems.Add("visual_und needs vit_config (the SigLIP config)");
        if (VisualGen && VaeConfig is null) problems.Add("visual_gen needs vae_config (the FLUX autoencoder's shape)");
        if (LatentPatchSize <= 0) problems.Add($"latent_patch_size {LatentPatchSize} must be positive");
        if (MaxLatentSize <= 0) problems.Add($"max_latent_size {MaxLatentSize} must be positive");
        if (VitMaxNumPatchPerSide <= 0) problems.Add($"vit_max_num_patch_per_side {VitMaxNumPatchPerSide} must be positive");
        if (!string.Equals(ConnectorAct, DefaultConnectorAct, StringComparison.Ordinal))
            problems.Add($"connector_act '{ConnectorAct}' is not supported (only '{DefaultConnectorAct}')");
        if (!(TimestepShift > 0 && double.IsFinite(TimestepShift))) problems.Add($"timestep_shift {TimestepShift} must be positive and finite");
        if (LlmConfig is not null && LlmConfig.HiddenSize % 4 != 0)
            problems.Add($"the LLM hidden size {LlmConfig.HiddenSize} must be a multiple of 4 for the 2D sin-cos position tables");
        if (problems.Count > 0)
            throw new BagelConfigException($"BagelConfig: {string.Join("; ", problems)}.");
    }
}
