using System.Text.Json;

namespace Bagel.Models.Qwen2;

/// <summary>
/// The Qwen2 backbone configuration: the Hugging Face <c>config.json</c> fields BAGEL reads plus BAGEL's own
/// overrides (model.md §2.1). Use <see cref="FromFile"/> and then <see cref="WithBagelOverrides"/> as the trainer does.
/// </summary>
public sealed record Qwen2Config
{
    /// <summary>The reference's Qwen2 default for <c>rope_theta</c> when a file omits it.</summary>
    public const double DefaultRopeTheta = 10000.0;

    /// <summary>The reference's Qwen2 default for <c>rms_norm_eps</c>.</summary>
    public const double DefaultRmsNormEps = 1e-6;

    /// <summary>The reference's Qwen2 default for <c>max_position_embeddings</c>.</summary>
    public const int DefaultMaxPositionEmbeddings = 32768;

    /// <summary>Transformers' default <c>initializer_range</c> (std of the N(0, σ) Linear/Embedding init).</summary>
    public const double DefaultInitializerRange = 0.02;

    /// <summary>The only activation Qwen2 uses (<c>hidden_act</c>).</summary>
    public const string SiluActivation = "silu";

    /// <summary><c>hidden_size</c> (H).</summary>
    public required int HiddenSize { get; init; }

    /// <summary><c>num_hidden_layers</c>.</summary>
    public required int NumHiddenLayers { get; init; }

    /// <summary><c>num_attention_heads</c>.</summary>
    public required int NumAttentionHeads { get; init; }

    /// <summary><c>num_key_value_heads</c> (GQA; defaults to <see cref="NumAttentionHeads"/> when absent).</summary>
    public required int NumKeyValueHeads { get; init; }

    /// <summary><c>intermediate_size</c> of the SwiGLU MLP.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary><c>vocab_size</c> (embedding rows).</summary>
    public required int VocabSize { get; init; }

    /// <summary><c>rope_theta</c>; default <see cref="DefaultRopeTheta"/>.</summary>
    public double RopeTheta { get; init; } = DefaultRopeTheta;

    /// <summary><c>rms_norm_eps</c>; default <see cref="DefaultRmsNormEps"/>.</summary>
    public double RmsNormEps { get; init; } = DefaultRmsNormEps;

    /// <summary><c>max_position_embeddings</c>; default <see cref="DefaultMaxPositionEmbeddings"/>.</summary>
    public int MaxPositionEmbeddings { get; init; } = DefaultMaxPositionEmbeddings;

    /// <summary><c>tie_word_embeddings</c> as read (BAGEL overrides it to false); default false.</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary><c>hidden_act</c>; only <see cref="SiluActivation"/> is supported.</summary>
    public string HiddenAct { get; init; } = SiluActivation;

    /// <summary><c>initializer_range</c>; default <see cref="DefaultInitializerRange"/>.</summary>
    public double InitializerRange { get; init; } = DefaultInitializerRange;

    /// <summary>BAGEL's <c>layer_module</c>; default <see cref="Qwen2LayerModule.Qwen2DecoderLayer"/> (the reference's config default).</summary>
    public Qwen2LayerModule LayerModule { get; init; } = Qwen2LayerModule.Qwen2DecoderLayer;

    /// <summary>BAGEL's <c>qk_norm</c> (RMSNorm on q and k per head); default true (the reference's config default).</summary>
    public bool QkNorm { get; init; } = true;

    /// <summary>BAGEL's <c>freeze_und</c> (stop-gradients on the und path, model.md §2.3); default false.</summary>
    public bool FreezeUnd { get; init; }

    /// <summary>hd = H / heads.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>True for MoE and MoT layers (the reference's <c>'Mo' in layer_module</c>): und/gen routing and <c>norm_moe_gen</c>.</summary>
    public bool UseMoe => LayerModule != Qwen2LayerModule.Qwen2DecoderLayer;

    /// <summary>The trainer's overrides (model.md §2.1): <c>layer_module</c>, <c>qk_norm</c>=true,
    /// <c>tie_word_embeddings</c>=false, <c>freeze_und</c>.</summary>
    /// <param name="layerModule">Default <see cref="Qwen2LayerModule.Qwen2MoTDecoderLayer"/> (the trainer's default).</param>
    /// <param name="freezeUnd">Default false.</param>
    /// <returns>The overridden copy.</returns>
    public Qwen2Config WithBagelOverrides(Qwen2LayerModule layerModule = Qwen2LayerModule.Qwen2MoTDecoderLayer, bool freezeUnd = false) =>
        this with { LayerModule = layerModule, QkNorm = true, TieWordEmbeddings = false, FreezeUnd = freezeUnd };

    /// <summary>Reads a Hugging Face <c>config.json</c> (a file, or a folder holding one).</summary>
    /// <param name="path">The file or model folder.</param>
    /// <returns>The validated config (BAGEL fields at their defaults unless the file sets them).</returns>
    /// <exception cref="Qwen2ConfigException">Missing file or field, bad value, or an unsupported option.</exception>
    public static Qwen2Config FromFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file))
            throw new Qwen2ConfigException($"Qwen2 config '{file}' does not exist; pass a config.json or the model folder holding it.");
        return FromJson(File.ReadAllText(file), file);
    }

    /// <summary>Parses the text of a Hugging Face <c>config.json</c>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="source">A name for error messages (usually the file path).</param>
    /// <returns>The validated config.</returns>
    /// <exception cref="Qwen2ConfigException">Malformed JSON, a missing or mistyped field, or an unsupported option.</exception>
    public static Qwen2Config FromJson(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new Qwen2ConfigException($"Qwen2 config '{source}' is not valid JSON: {e.Message}", e); }
        using (document)
        {
            var reader = Qwen2ConfigJson.Reader(document.RootElement, source);
            int heads = reader.RequiredInt("num_attention_heads");
            var config = new Qwen2Config
            {
                HiddenSize = reader.RequiredInt("hidden_size"),
                NumHiddenLayers = reader.RequiredInt("num_hidden_layers"),
                NumAttentionHeads = heads,
                NumKeyValueHeads = reader.OptionalInt("num_key_value_heads") ?? heads,
                IntermediateSize = reader.RequiredInt("intermediate_size"),
                VocabSize = reader.RequiredInt("vocab_size"),
                RopeTheta = reader.OptionalDouble("rope_theta") ?? DefaultRopeTheta,
                RmsNormEps = reader.OptionalDouble("rms_norm_eps") ?? DefaultRmsNormEps,
                MaxPositionEmbeddings = reader.OptionalInt("max_position_embeddings") ?? DefaultMaxPositionEmbeddings,
                TieWordEmbeddings = reader.OptionalBool("tie_word_embeddings") ?? false,
                HiddenAct = reader.OptionalString("hidden_act") ?? SiluActivation,
                InitializerRange = reader.OptionalDouble("initializer_range") ?? DefaultInitializerRange,
                LayerModule = reader.OptionalLayerModule("layer_module") ?? Qwen2LayerModule.Qwen2DecoderLayer,
                QkNorm = reader.OptionalBool("qk_norm") ?? true,
                FreezeUnd = reader.OptionalBool("freeze_und") ?? false,
            };
            reader.RejectUnsupported();
            config.Validate(source);
            return config;
        }
    }

    /// <summary>Checks the sizes fit together; reports every problem at once.</summary>
    /// <param name="source">A name for the message.</param>
    /// <exception cref="Qwen2ConfigException">Something does not fit.</exception>
    public void Validate(string source = "Qwen2Config")
    {
        var problems = new List<string>();
        if (HiddenSize <= 0 || NumHiddenLayers < 0 || NumAttentionHeads <= 0 || NumKeyValueHeads <= 0 || IntermediateSize <= 0 || VocabSize <= 0)
            problems.Add("sizes must be positive");
        else
        {
            if (HiddenSize % NumAttentionHeads != 0) problems.Add($"hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
            if (NumAttentionHeads % NumKeyValueHeads != 0) problems.Add($"num_attention_heads {NumAttentionHeads} is not a multiple of num_key_value_heads {NumKeyValueHeads}");
            if (HeadDim % 2 != 0) problems.Add($"head dim {HeadDim} must be even for the half rotation of RoPE");
        }
        if (!string.Equals(HiddenAct, SiluActivation, StringComparison.Ordinal)) problems.Add($"hidden_act '{HiddenAct}' is not supported (only '{SiluActivation}')");
        if (RmsNormEps <= 0 || RopeTheta <= 0) problems.Add("rms_norm_eps and rope_theta must be positive");
        if (problems.Count > 0)
            throw new Qwen2ConfigException($"Qwen2 config '{source}': {string.Join("; ", problems)}.");
    }
}
