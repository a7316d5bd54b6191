using System.Text.Json;

namespace Bagel.Models.Siglip;

/// <summary>Typed field access to a config.json object with errors naming the file and key.</summary>
internal readonly struct SiglipConfigJson(JsonElement root, string source)
{
    public int RequiredInt(string key) =>
        OptionalInt(key) ?? throw new SiglipConfigException($"SigLIP config '{source}' lacks the required field '{key}'.");

    public int? OptionalInt(string key) =>
        Get(key) is { } value ? value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n) ? n : throw Mistyped(key, "an integer") : null;

    public double? OptionalDouble(string key) =>
        Get(key) is { } value ? value.ValueKind == JsonValueKind.Number ? value.GetDouble() : throw Mistyped(key, "a number") : null;

    public bool? OptionalBool(string key) =>
        Get(key) is { } value ? value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : throw Mistyped(key, "true or false") : null;

    public string? OptionalString(string key) =>
        Get(key) is { } value ? value.ValueKind == JsonValueKind.String ? value.GetString() : throw Mistyped(key, "a string") : null;

    /// <summary>The nested <c>vision_config</c> of a full SigLIP (text + vision) config, as the reference's
    /// <c>SiglipVisionConfig.from_pretrained</c> reads it when <c>model_type</c> is "siglip".</summary>
    public SiglipConfigJson? VisionSection() =>
        OptionalString("model_type") == "siglip"
            ? Get("vision_config") is { ValueKind: JsonValueKind.Object } vision
                ? new SiglipConfigJson(vision, source + ":vision_config")
                : throw new SiglipConfigException($"SigLIP config '{source}' has model_type 'siglip' but no 'vision_config' object.")
            : null;

    private JsonElement? Get(string key) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty(key, out JsonElement value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private SiglipConfigException Mistyped(string key, string expected) =>
        new($"SigLIP config '{source}': '{key}' must be {expected}.");
}
