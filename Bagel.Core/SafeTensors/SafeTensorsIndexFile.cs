using System.Text.Encodings.Web;
using System.Text.Json;

namespace Bagel.Core.SafeTensors;

/// <summary>
/// The Hugging Face sharded-checkpoint index, <c>model.safetensors.index.json</c>:
/// <c>{"metadata": {"total_size": N}, "weight_map": {tensor: shard file}}</c>.
/// </summary>
internal static class SafeTensorsIndexFile
{
    /// <summary>The index's metadata block key.</summary>
    public const string MetadataKey = "metadata";

    /// <summary>The index's tensor-to-shard map key.</summary>
    public const string WeightMapKey = "weight_map";

    /// <summary>The metadata entry holding the sum of all tensors' bytes.</summary>
    public const string TotalSizeKey = "total_size";

    /// <summary>The parsed index: metadata values as text (numbers keep their JSON spelling) and the weight map.</summary>
    public sealed record Parsed(IReadOnlyDictionary<string, string> Metadata, IReadOnlyDictionary<string, string> WeightMap);

    /// <summary>Reads and validates an index file.</summary>
    public static Parsed Read(string indexPath)
    {
        byte[] bytes = File.ReadAllBytes(indexPath);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException ex)
        {
            throw new SafeTensorsFormatException(indexPath, null, "index", $"the index is not valid JSON ({ex.Message}).", ex);
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(indexPath, null, "index", $"the index must be a JSON object, found {root.ValueKind}.");

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            if (root.TryGetProperty(MetadataKey, out JsonElement metadataElement) && metadataElement.ValueKind != JsonValueKind.Null)
            {
                if (metadataElement.ValueKind != JsonValueKind.Object)
                    throw new SafeTensorsFormatException(indexPath, null, MetadataKey, $"'{MetadataKey}' must be an object, found {metadataElement.ValueKind}.");
                foreach (JsonProperty entry in metadataElement.EnumerateObject())
                    metadata[entry.Name] = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : entry.Value.GetRawText();
            }

            if (!root.TryGetProperty(WeightMapKey, out JsonElement mapElement) || mapElement.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(indexPath, null, WeightMapKey, $"the index has no '{WeightMapKey}' object.");
            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty entry in mapElement.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new SafeTensorsFormatException(indexPath, entry.Name, WeightMapKey, $"the shard of '{entry.Name}' must be a file name string, found {entry.Value.ValueKind}.");
                string shard = entry.Value.GetString()!;
                if (shard.Length == 0 || Path.IsPathRooted(shard) || shard.Contains('/') || shard.Contains('\\') || shard is "." or "..")
                    throw new SafeTensorsFormatException(indexPath, entry.Name, WeightMapKey, $"the shard '{shard}' must be a plain file name beside the index.");
                if (!weightMap.TryAdd(entry.Name, shard))
                    throw new SafeTensorsFormatException(indexPath, entry.Name, WeightMapKey, $"'{entry.Name}' appears twice in the weight map.");
            }
            return new Parsed(metadata, weightMap);
        }
    }

    /// <summary>Serialises an index deterministically (sorted keys, two-space indentation, trailing newline).</summary>
    public static byte[] Serialize(long totalSize, IReadOnlyDictionary<string, string> weightMap)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject(MetadataKey);
            json.WriteNumber(TotalSizeKey, totalSize);
            json.WriteEndObject();
            json.WriteStartObject(WeightMapKey);
            foreach (KeyValuePair<string, string> pair in weightMap.OrderBy(p => p.Key, StringComparer.Ordinal))
                json.WriteString(pair.Key, pair.Value);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }
}
