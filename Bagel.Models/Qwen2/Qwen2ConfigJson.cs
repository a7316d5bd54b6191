using System.Text.Json;
using Bagel.Models.Common;

namespace Bagel.Models.Qwen2;

/// <summary>Qwen2-specific reads of a config.json (on top of <see cref="ConfigJsonReader"/>).</summary>
internal static class Qwen2ConfigJson
{
    public static ConfigJsonReader Reader(JsonElement root, string source) => new(root, source, "Qwen2", message => new Qwen2ConfigException(message));

    public static Qwen2LayerModule? OptionalLayerModule(this ConfigJsonReader reader, string key)
    {
        string? name = reader.OptionalString(key);
        if (name is null) return null;
        return Enum.TryParse(name, ignoreCase: false, out Qwen2LayerModule module) && Enum.IsDefined(module)
            ? module
            : throw reader.Error($": '{key}' is '{name}'; expected one of {string.Join(", ", Enum.GetNames<Qwen2LayerModule>())}.");
    }

    /// <summary>Options the reference supports but BAGEL never uses (model.md §2.1: no sliding window, no rope scaling).</summary>
    public static void RejectUnsupported(this ConfigJsonReader reader)
    {
        if (reader.Get("rope_scaling") is not null)
            throw reader.Error(" sets 'rope_scaling'; only the default RoPE is supported. Remove it or set it to null.");
        if (reader.OptionalBool("use_sliding_window") == true)
            throw reader.Error(" sets 'use_sliding_window'; sliding-window attention is not supported. Set it to false.");
    }
}
