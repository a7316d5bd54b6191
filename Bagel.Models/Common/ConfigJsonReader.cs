using System.Text.Json;

namespace Bagel.Models.Common;

/// <summary>
/// Typed field access to a Hugging Face config.json object; every error names the model, the file and the key and is
/// raised as the caller's own exception type.
/// </summary>
/// <param name="root">The JSON object.</param>
/// <param name="source">The file (and section) for messages.</param>
/// <param name="model">The model's name for messages (e.g. "Qwen2").</param>
/// <param name="error">Creates the caller's exception from a message.</param>
internal readonly struct ConfigJsonReader(JsonElement root, string source, string model, Func<string, Exception> error)
{
    public string Source => source;

    public Exception Error(string message) => error($"{model} config '{source}'{message}");

    public int RequiredInt(string key) => OptionalInt(key) ?? throw Error($" lacks the required field '{key}'.");

    public int? OptionalInt(string key) =>
        Get(key) is { } value ? value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n) ? n : throw Mistyped(key, "an integer") : null;

    public double? OptionalDouble(string key) =>
        Get(key) is { } value ? value.ValueKind == JsonValueKind.Number ? value.GetDouble() : throw Mistyped(key, "a number") : null;

    public bool? OptionalBool(string key) =>
        Get(key) is { } value ? value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : throw Mistyped(key, "true or false") : null;

    public string? OptionalString(string key) =>
        Get(key) is { } value ? value.ValueKind == JsonValueKind.String ? value.GetString() : throw Mistyped(key, "a string") : null;

    /// <summary>The key's value, or null when absent or JSON null.</summary>
    public JsonElement? Get(string key) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty(key, out JsonElement value) && value.ValueKind != JsonValueKind.Null ? value : null;

    /// <summary>A reader over a nested object.</summary>
    public ConfigJsonReader Section(JsonElement section, string name) => new(section, $"{source}:{name}", model, error);

    private Exception Mistyped(string key, string expected) => Error($": '{key}' must be {expected}.");
}
