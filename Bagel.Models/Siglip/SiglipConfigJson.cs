using System.Text.Json;
using Bagel.Models.Common;

namespace Bagel.Models.Siglip;

/// <summary>SigLIP-specific reads of a config.json (on top of <see cref="ConfigJsonReader"/>).</summary>
internal static class SiglipConfigJson
{
    public static ConfigJsonReader Reader(JsonElement root, string source) => new(root, source, "SigLIP", message => new SiglipConfigException(message));

    /// <summary>The nested <c>vision_config</c> of a full SigLIP (text + vision) config, as the reference's
    /// <c>SiglipVisionConfig.from_pretrained</c> reads it when <c>model_type</c> is "siglip".</summary>
    public static ConfigJsonReader? VisionSection(this ConfigJsonReader reader) =>
        reader.OptionalString("model_type") == "siglip"
            ? reader.Get("vision_config") is { ValueKind: JsonValueKind.Object } vision
                ? reader.Section(vision, "vision_config")
                : throw reader.Error(" has model_type 'siglip' but no 'vision_config' object.")
            : null;
}
