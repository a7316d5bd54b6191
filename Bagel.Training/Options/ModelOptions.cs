using Microsoft.Extensions.Configuration;

namespace Bagel.Training.Options;

/// <summary>
/// The model flags of the reference's <c>ModelArguments</c> (training.md 5.1): same snake_case names (as configuration
/// keys) and the same defaults. Bind with <see cref="TrainingConfiguration.BindModel"/> and validate with
/// <see cref="ModelOptionsValidator"/>.
/// </summary>
public sealed class ModelOptions
{
    /// <summary>Configuration section these options bind from by default: <c>model</c>.</summary>
    public const string SectionName = "model";

    /// <summary>Folder of a released BAGEL model (configs, tokenizer, <c>ae.safetensors</c>). Default <c>hf/BAGEL-7B-MoT</c>.</summary>
    [ConfigurationKeyName("model_path")] public string ModelPath { get; set; } = "hf/BAGEL-7B-MoT";

    /// <summary>Folder of the Qwen2 language model. Default <c>hf/Qwen2.5-0.5B-Instruct/</c>.</summary>
    [ConfigurationKeyName("llm_path")] public string LlmPath { get; set; } = "hf/Qwen2.5-0.5B-Instruct/";

    /// <summary>Apply RMSNorm to queries and keys in the LLM. Default <c>true</c>.</summary>
    [ConfigurationKeyName("llm_qk_norm")] public bool LlmQkNorm { get; set; } = true;

    /// <summary>Share the input embedding and <c>lm_head</c> weights. Default <c>false</c>; <c>true</c> is refused (not supported here).</summary>
    [ConfigurationKeyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; set; }

    /// <summary>Decoder layer type: <c>Qwen2DecoderLayer</c>, <c>Qwen2MoEDecoderLayer</c> or <c>Qwen2MoTDecoderLayer</c>. Default <c>Qwen2MoTDecoderLayer</c>.</summary>
    [ConfigurationKeyName("layer_module")] public string LayerModule { get; set; } = "Qwen2MoTDecoderLayer";

    /// <summary>FLUX VAE weights file. Default <c>flux/vae/ae.safetensors</c>.</summary>
    [ConfigurationKeyName("vae_path")] public string VaePath { get; set; } = "flux/vae/ae.safetensors";

    /// <summary>Folder of the SigLIP NaViT vision encoder. Default <c>hf/siglip-so400m-14-980-flash-attn2-navit/</c>.</summary>
    [ConfigurationKeyName("vit_path")] public string VitPath { get; set; } = "hf/siglip-so400m-14-980-flash-attn2-navit/";

    /// <summary>Largest latent grid side (so the largest generated image); fine-tuning the released model needs 64. Default <c>32</c>.</summary>
    [ConfigurationKeyName("max_latent_size")] public int MaxLatentSize { get; set; } = 32;

    /// <summary>Side of a latent patch in latent pixels. Default <c>2</c>.</summary>
    [ConfigurationKeyName("latent_patch_size")] public int LatentPatchSize { get; set; } = 2;

    /// <summary>Side of a ViT patch in pixels. Default <c>14</c>.</summary>
    [ConfigurationKeyName("vit_patch_size")] public int VitPatchSize { get; set; } = 14;

    /// <summary>Most ViT patches per image side. Default <c>70</c>.</summary>
    [ConfigurationKeyName("vit_max_num_patch_per_side")] public int VitMaxNumPatchPerSide { get; set; } = 70;

    /// <summary>Activation of the ViT-to-LLM connector. Default and only supported value <c>gelu_pytorch_tanh</c>.</summary>
    [ConfigurationKeyName("connector_act")] public string ConnectorAct { get; set; } = "gelu_pytorch_tanh";

    /// <summary>Interpolate position embeddings. Default <c>false</c>.</summary>
    [ConfigurationKeyName("interpolate_pos")] public bool InterpolatePos { get; set; }

    /// <summary>ViT layer whose output is used; the ViT depth becomes n+1+select (-2 drops the last layer). Default <c>-2</c>.</summary>
    [ConfigurationKeyName("vit_select_layer")] public int VitSelectLayer { get; set; } = -2;

    /// <summary>Use rotary position embedding in the ViT. Default <c>false</c>; <c>true</c> is refused (only the learned table is implemented).</summary>
    [ConfigurationKeyName("vit_rope")] public bool VitRope { get; set; }

    /// <summary>Probability of dropping the text condition of a generation sample. Default <c>0.1</c>.</summary>
    [ConfigurationKeyName("text_cond_dropout_prob")] public double TextCondDropoutProb { get; set; } = 0.1;

    /// <summary>Probability of dropping a VAE (clean latent) condition. Default <c>0.3</c>.</summary>
    [ConfigurationKeyName("vae_cond_dropout_prob")] public double VaeCondDropoutProb { get; set; } = 0.3;

    /// <summary>Probability of dropping a ViT condition. Default <c>0.3</c>.</summary>
    [ConfigurationKeyName("vit_cond_dropout_prob")] public double VitCondDropoutProb { get; set; } = 0.3;
}
