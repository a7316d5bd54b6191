using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// The BAGEL composite (reference <c>Bagel</c>, modeling/bagel/bagel.py; model.md §1): the language model, and — per
/// <see cref="BagelConfig.VisualGen"/> — <c>time_embedder</c>, <c>vae2llm</c>, <c>llm2vae</c>, <c>latent_pos_embed</c>,
/// and — per <see cref="BagelConfig.VisualUnd"/> — <c>vit_model</c>, <c>connector</c>, <c>vit_pos_embed</c>, all under
/// the reference's state-dict names. The VAE is not a submodule: the caller encodes the batch's images (no grad) and
/// passes the latents to <see cref="Forward"/>.
/// </summary>
public sealed partial class BagelModel : nn.Module
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly Qwen2ForCausalLM language_model;
    private readonly TimestepEmbedder? time_embedder;
    private readonly Linear? vae2llm;
    private readonly Linear? llm2vae;
    private readonly PositionEmbedding? latent_pos_embed;
    private readonly SiglipVisionModel? vit_model;
    private readonly MlpConnector? connector;
    private readonly PositionEmbedding? vit_pos_embed;
#pragma warning restore IDE1006

    /// <summary>
    /// Builds the model. Parts not given are created from their configs with their own initial weights (the
    /// Transformers rules for the LLM, the reference's SigLIP init); the glue modules get the PyTorch default init,
    /// <c>llm2vae</c> is zero and both sin-cos tables are fixed (model.md §8.1).
    /// </summary>
    /// <param name="config">The composite config (validated here).</param>
    /// <param name="languageModel">An existing language model (e.g. loaded from a Qwen2 folder); null builds one.</param>
    /// <param name="vitModel">An existing SigLIP tower; null builds one when <see cref="BagelConfig.VisualUnd"/>.</param>
    /// <exception cref="BagelConfigException">The config is inconsistent, or a given part does not match it.</exception>
    public BagelModel(BagelConfig config, Qwen2ForCausalLM? languageModel = null, SiglipVisionModel? vitModel = null)
        : base(nameof(BagelModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (vitModel is not null && !config.VisualUnd)
            throw new BagelConfigException("A SigLIP tower was given but visual_und is false; pass null or enable visual_und.");
        Config = config;
        language_model = languageModel ?? new Qwen2ForCausalLM(config.LlmConfig);
        if (language_model.Config.HiddenSize != config.LlmConfig.HiddenSize || language_model.Config.UseMoe != config.UseMoe)
            throw new BagelConfigException(
                $"The given language model ({language_model.Config.LayerModule}, hidden {language_model.Config.HiddenSize}) does not match llm_config ({config.LlmConfig.LayerModule}, hidden {config.LlmConfig.HiddenSize}).");
        register_module("language_model", language_model);
        int hidden = config.LlmConfig.HiddenSize;

        if (config.VisualGen)
        {
            time_embedder = new TimestepEmbedder(hidden);
            vae2llm = GenerationProjections.CreateVae2Llm(config.PatchLatentDim, hidden);
            llm2vae = GenerationProjections.CreateLlm2Vae(hidden, config.PatchLatentDim);
            latent_pos_embed = new PositionEmbedding(config.MaxLatentSize, hidden);
            register_module("time_embedder", time_embedder);
            register_module("vae2llm", vae2llm);
            register_module("llm2vae", llm2vae);
            register_module("latent_pos_embed", latent_pos_embed);
        }

        if (config.VisualUnd)
        {
            SiglipVisionConfig vitConfig = config.VitConfig!;
            vit_model = vitModel ?? new SiglipVisionModel(vitConfig);
            if (vit_model.Config.HiddenSize != vitConfig.HiddenSize)
                throw new BagelConfigException(
                    $"The given SigLIP tower has hidden size {vit_model.Config.HiddenSize}, vit_config says {vitConfig.HiddenSize}.");
            connector = new MlpConnector(vitConfig.HiddenSize, hidden);
            vit_pos_embed = new PositionEmbedding(config.VitMaxNumPatchPerSide, hidden);
            register_module("vit_model", vit_model);
            register_module("connector", connector);
            register_module("vit_pos_embed", vit_pos_embed);
        }
    }

    /// <summary>Components are registered explicitly (absent branches are not registered at all); this stops
    /// TorchSharp from also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <summary>The config.</summary>
    public BagelConfig Config { get; }

    /// <summary>The language model (<c>language_model</c>).</summary>
    public Qwen2ForCausalLM LanguageModel => language_model;

    /// <summary>The SigLIP tower (<c>vit_model</c>), or null without <see cref="BagelConfig.VisualUnd"/>.</summary>
    public SiglipVisionModel? VitModel => vit_model;

    /// <summary>The ViT → LLM connector (<c>connector</c>), or null without <see cref="BagelConfig.VisualUnd"/>.</summary>
    public MlpConnector? Connector => connector;

    /// <summary>The timestep embedder (<c>time_embedder</c>), or null without <see cref="BagelConfig.VisualGen"/>.</summary>
    public TimestepEmbedder? TimeEmbedder => time_embedder;

    /// <summary>The latent → LLM projection (<c>vae2llm</c>), or null without <see cref="BagelConfig.VisualGen"/>.</summary>
    public Linear? Vae2Llm => vae2llm;

    /// <summary>The LLM → velocity projection (<c>llm2vae</c>), or null without <see cref="BagelConfig.VisualGen"/>.</summary>
    public Linear? Llm2Vae => llm2vae;

    /// <summary>The latent position table (<c>latent_pos_embed</c>), or null without <see cref="BagelConfig.VisualGen"/>.</summary>
    public PositionEmbedding? LatentPosEmbed => latent_pos_embed;

    /// <summary>The ViT position table (<c>vit_pos_embed</c>), or null without <see cref="BagelConfig.VisualUnd"/>.</summary>
    public PositionEmbedding? VitPosEmbed => vit_pos_embed;

    /// <summary>The state-dict names of the fixed sin-cos tables present in this model; checkpoint loading drops them
    /// and recomputes them, as the reference does.</summary>
    public IReadOnlyList<string> PositionTableKeys =>
        [.. new[] { (latent_pos_embed, "latent_pos_embed.pos_embed"), (vit_pos_embed, "vit_pos_embed.pos_embed") }
            .Where(t => t.Item1 is not null).Select(t => t.Item2)];

    /// <summary>The reference's <c>freeze_llm</c>: every <c>language_model</c> parameter (embeddings, all layers with
    /// their gen experts, norms, lm_head) stops requiring gradients.</summary>
    public void FreezeLanguageModel() => SetRequiresGrad(language_model, false);

    /// <summary>The reference's <c>freeze_vit</c>: every <c>vit_model</c> parameter stops requiring gradients (no-op
    /// without the understanding branch).</summary>
    public void FreezeVit()
    {
        if (vit_model is not null) SetRequiresGrad(vit_model, false);
    }

    /// <summary>Rebuilds both sin-cos tables (after a load wrote over them).</summary>
    public void ResetPositionTables()
    {
        latent_pos_embed?.Reset();
        vit_pos_embed?.Reset();
    }

    private static void SetRequiresGrad(nn.Module module, bool requiresGrad)
    {
        foreach (Parameter parameter in module.parameters()) parameter.requires_grad = requiresGrad;
    }
}
