using System.Text.Json;

namespace Bagel.Models.Qwen2;

/// <summary>Typed field access to a config.json root with errors naming the file and key.</summary>
internal readonly struct Qwen2ConfigJson(JsonElement root, string source)
{
    public int RequiredInt(string key) =>
        OptionalInt(key) ?? throw new Qwen2ConfigException($"Qwen2 config '{source}' lacks the required field '{key}'.");

    public int? OptionalInt(string key) =>
        Get(key) is { } value ? value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n) ? n : throw Mistyped(key, "an integer") : null;

    public double? OptionalDouble(string key) =>
        Get(key) is { } value ? value.ValueKind == JsonValueKind.Number ? value.GetDouble() : throw Mistyped(key, "a number") : null;

    public bool? OptionalBool(string key) =>
        Get(key) is { } value ? value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : throw Mistyped(key, "true or false") : null;

    public string? OptionalString(string key) =>
        Get(key) is { } value ? value.ValueKind == JsonValueKind.String ? value.GetString() : throw Mistyped(key, "a string") : null;

    public Qwen2LayerModule? OptionalLayerModule(string key)
    {
        string? name = OptionalString(key);
        if (name is null) return null;
        return Enum.TryParse(name, ignoreCase: false, out Qwen2LayerModule module) && Enum.IsDefined(module)
            ? module
            : throw new Qwen2ConfigException($"Qwen2 config '{source}': '{key}' is '{name}'; expected one of {string.Join(", ", Enum.GetNames<Qwen2LayerModule>())}.");
    }

    /// <summary>Options the reference supports but BAGEL never uses (model.md §2.1: no sliding window, no rope scaling).</summary>
    public void RejectUnsupported()
    {
        if (Get("rope_scaling") is { ValueKind: not JsonValueKind.Null })
            throw new Qwen2ConfigException($"Qwen2 config '{source}' sets 'rope_scaling'; only the default RoPE is supported. Remove it or set it to null.");
        if (OptionalBool("use_sliding_window") == true)
            throw new Qwen2ConfigException($"Qwen2 config '{source}' sets 'use_sliding_window'; sliding-window attention is not supported. Set it to false.");
    }

    private JsonElement? Get(string key) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty(key, out JsonElement value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private Qwen2ConfigException Mistyped(string key, string expected) =>
        new($"Qwen2 config '{source}': '{key}' must be {expected}.");
}
