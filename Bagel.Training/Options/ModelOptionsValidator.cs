using Microsoft.Extensions.Options;

namespace Bagel.Training.Options;

/// <summary>Validates <see cref="ModelOptions"/>, reporting every bad value at once.</summary>
public sealed class ModelOptionsValidator : IValidateOptions<ModelOptions>
{
    /// <summary>Decoder layer types the reference knows (<c>layer_module</c>).</summary>
    public static readonly IReadOnlyList<string> LayerModules = ["Qwen2DecoderLayer", "Qwen2MoEDecoderLayer", "Qwen2MoTDecoderLayer"];

    /// <summary>The connector activation the model implements (the reference's default, <c>connector_act</c>).</summary>
    public const string SupportedConnectorAct = "gelu_pytorch_tanh";

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var f = new OptionFailures();
        f.NotEmpty("model_path", options.ModelPath);
        f.NotEmpty("llm_path", options.LlmPath);
        f.NotEmpty("vae_path", options.VaePath);
        f.NotEmpty("vit_path", options.VitPath);
        f.OneOf("layer_module", options.LayerModule, [.. LayerModules]);
        f.Positive("max_latent_size", options.MaxLatentSize);
        f.Positive("latent_patch_size", options.LatentPatchSize);
        f.Positive("vit_patch_size", options.VitPatchSize);
        f.Positive("vit_max_num_patch_per_side", options.VitMaxNumPatchPerSide);
        f.OneOf("connector_act", options.ConnectorAct, [SupportedConnectorAct]);
        if (options.TieWordEmbeddings)
            f.Add("'tie_word_embeddings' is true; BAGEL trains with lm_head separate from embed_tokens (the reference's default false), and tying them is not supported here. Leave it false.");
        if (options.VitRope)
            f.Add("'vit_rope' is true; only SigLIP's learned position table is implemented (the reference's default false), not its 2D RoPE variant. Leave it false.");
        f.Probability("text_cond_dropout_prob", options.TextCondDropoutProb);
        f.Probability("vae_cond_dropout_prob", options.VaeCondDropoutProb);
        f.Probability("vit_cond_dropout_prob", options.VitCondDropoutProb);
        return f.ToResult();
    }
}
