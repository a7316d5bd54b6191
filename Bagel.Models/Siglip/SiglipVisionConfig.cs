using Bagel.Models.Common;
using System.Text.Json;

namespace Bagel.Models.Siglip;

/// <summary>
/// The SigLIP vision tower configuration: the Hugging Face <c>config.json</c> fields BAGEL reads (defaults are the
/// reference's <c>SiglipVisionConfig</c> defaults) plus the trainer's overrides (model.md §3). Use
/// <see cref="FromFile"/> and then <see cref="WithBagelOverrides"/> as <c>pretrain_unified_navit.py</c> does.
/// </summary>
public sealed record SiglipVisionConfig
{
    /// <summary>The trainer's default <c>vit_select_layer</c>: the features of the second-to-last layer are used,
    /// so <c>num_hidden_layers</c> becomes L + 1 + (−2) = L − 1 (26 for so400m's 27).</summary>
    public const int DefaultVitSelectLayer = -2;

    /// <summary>The only activation SigLIP uses (<c>hidden_act</c>, GELU with the tanh approximation).</summary>
    public const string GeluTanhActivation = "gelu_pytorch_tanh";

    /// <summary>The reference's default <c>layer_norm_eps</c>.</summary>
    public const double DefaultLayerNormEps = 1e-6;

    /// <summary><c>hidden_size</c>; default 768 (so400m: 1152).</summary>
    public int HiddenSize { get; init; } = 768;

    /// <summary><c>intermediate_size</c> of the MLP; default 3072 (so400m: 4304).</summary>
    public int IntermediateSize { get; init; } = 3072;

    /// <summary><c>num_hidden_layers</c>; default 12 (so400m file: 27, BAGEL builds 26).</summary>
    public int NumHiddenLayers { get; init; } = 12;

    /// <summary><c>num_attention_heads</c>; default 12 (so400m: 16, head dim 72).</summary>
    public int NumAttentionHeads { get; init; } = 12;

    /// <summary><c>num_channels</c>; default 3.</summary>
    public int NumChannels { get; init; } = 3;

    /// <summary><c>image_size</c>; default 224 (so400m NaViT: 980, a 70 × 70 position grid).</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary><c>patch_size</c>; default 16 (so400m: 14).</summary>
    public int PatchSize { get; init; } = 16;

    /// <summary><c>hidden_act</c>; only <see cref="GeluTanhActivation"/> is supported.</summary>
    public string HiddenAct { get; init; } = GeluTanhActivation;

    /// <summary><c>layer_norm_eps</c>; default <see cref="DefaultLayerNormEps"/>.</summary>
    public double LayerNormEps { get; init; } = DefaultLayerNormEps;

    /// <summary>BAGEL's <c>rope</c> (2D RoPE instead of the learned position table); the reference's config default is
    /// true, the trainer forces false and only false is supported here.</summary>
    public bool Rope { get; init; } = true;

    /// <summary>Round q/k/v to bf16 before attention, as the reference does when it hands them to
    /// <c>flash_attn_varlen_func</c> (<c>.to(torch.bfloat16)</c> in <c>SiglipFlashAttention2</c>). A no-op when the
    /// tower already runs in bf16; with f32 weights it reproduces the reference's rounding (and the bf16 rounding of
    /// the q/k/v gradients). Default true. Not a config.json field.</summary>
    public bool RoundAttentionInputsToBFloat16 { get; init; } = true;

    /// <summary>Head dim = hidden / heads.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Patches per image side of the position table (<c>image_size / patch_size</c>; 70 for so400m NaViT).</summary>
    public int NumPatchesPerSide => ImageSize / PatchSize;

    /// <summary>Rows of the learned position table (<see cref="NumPatchesPerSide"/>²; 4900).</summary>
    public int NumPositions => NumPatchesPerSide * NumPatchesPerSide;

    /// <summary>Values per packed patch vector (channels · patch²; 588).</summary>
    public int PatchVectorSize => NumChannels * PatchSize * PatchSize;

    /// <summary>The trainer's overrides (model.md §3): <c>num_hidden_layers = L + 1 + vit_select_layer</c>, <c>rope = false</c>.</summary>
    /// <param name="vitSelectLayer">Default <see cref="DefaultVitSelectLayer"/> (−2: drop the last layer).</param>
    /// <returns>The overridden copy.</returns>
    /// <exception cref="SiglipConfigException">The selection leaves no layer or asks for more layers than the file has.</exception>
    public SiglipVisionConfig WithBagelOverrides(int vitSelectLayer = DefaultVitSelectLayer)
    {
        int layers = NumHiddenLayers + 1 + vitSelectLayer;
        if (vitSelectLayer >= 0 || layers <= 0)
            throw new SiglipConfigException($"vit_select_layer {vitSelectLayer} with {NumHiddenLayers} layers leaves {layers}; pick a negative value above −{NumHiddenLayers + 1}.");
        return this with { NumHiddenLayers = layers, Rope = false };
    }

    /// <summary>Reads a Hugging Face SigLIP <c>config.json</c> (a file, or a folder holding one); a full SigLIP config
    /// (<c>model_type</c> "siglip") is read from its <c>vision_config</c>, as the reference does.</summary>
    /// <param name="path">The file or model folder.</param>
    /// <returns>The validated config (as in the file; call <see cref="WithBagelOverrides"/> to build BAGEL's tower).</returns>
    /// <exception cref="SiglipConfigException">Missing file, malformed JSON, a mistyped field or an unsupported option.</exception>
    public static SiglipVisionConfig FromFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file))
            throw new SiglipConfigException($"SigLIP config '{file}' does not exist; pass a config.json or the model folder holding it.");
        return FromJson(File.ReadAllText(file), file);
    }

    /// <summary>Parses the text of a Hugging Face SigLIP <c>config.json</c>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="source">A name for error messages (usually the file path).</param>
    /// <returns>The validated config.</returns>
    /// <exception cref="SiglipConfigException">Malformed JSON, a mistyped field, or an unsupported option.</exception>
    public static SiglipVisionConfig FromJson(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new SiglipConfigException($"SigLIP config '{source}' is not valid JSON: {e.Message}", e); }
        using (document)
        {
            var root = SiglipConfigJson.Reader(document.RootElement, source);
            ConfigJsonReader reader = root.VisionSection() ?? root;
            var defaults = new SiglipVisionConfig();
            var config = new SiglipVisionConfig
            {
                HiddenSize = reader.OptionalInt("hidden_size") ?? defaults.HiddenSize,
                IntermediateSize = reader.OptionalInt("intermediate_size") ?? defaults.IntermediateSize,
                NumHiddenLayers = reader.OptionalInt("num_hidden_layers") ?? defaults.NumHiddenLayers,
                NumAttentionHeads = reader.OptionalInt("num_attention_heads") ?? defaults.NumAttentionHeads,
                NumChannels = reader.OptionalInt("num_channels") ?? defaults.NumChannels,
                ImageSize = reader.OptionalInt("image_size") ?? defaults.ImageSize,
                PatchSize = reader.OptionalInt("patch_size") ?? defaults.PatchSize,
                HiddenAct = reader.OptionalString("hidden_act") ?? defaults.HiddenAct,
                LayerNormEps = reader.OptionalDouble("layer_norm_eps") ?? defaults.LayerNormEps,
                Rope = reader.OptionalBool("rope") ?? defaults.Rope,
            };
            config.Validate(source);
            return config;
        }
    }

    /// <summary>Checks the sizes fit together; reports every problem at once. <see cref="Rope"/> is checked when the
    /// tower is built, since a file may set it before the trainer's override.</summary>
    /// <param name="source">A name for the message.</param>
    /// <exception cref="SiglipConfigException">Something does not fit.</exception>
    public void Validate(string source = nameof(SiglipVisionConfig))
    {
        var problems = new List<string>();
        if (HiddenSize <= 0 || IntermediateSize <= 0 || NumHiddenLayers < 0 || NumAttentionHeads <= 0 || NumChannels <= 0 || PatchSize <= 0 || ImageSize < PatchSize)
            problems.Add("sizes must be positive and image_size at least patch_size");
        else if (HiddenSize % NumAttentionHeads != 0)
            problems.Add($"hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        if (!string.Equals(HiddenAct, GeluTanhActivation, StringComparison.Ordinal))
            problems.Add($"hidden_act '{HiddenAct}' is not supported (only '{GeluTanhActivation}')");
        if (LayerNormEps <= 0) problems.Add("layer_norm_eps must be positive");
        if (problems.Count > 0)
            throw new SiglipConfigException($"SigLIP config '{source}': {string.Join("; ", problems)}.");
    }
}
