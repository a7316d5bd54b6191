using System.Text.Encodings.Web;
using System.Text.Json;

namespace Bagel.Core.SafeTensors;

/// <summary>
/// Serialises a header deterministically: "__metadata__" first with keys sorted, then the tensors in data order,
/// padded with spaces so that the data region starts at a multiple of 8 bytes (as the Rust implementation does).
/// </summary>
internal static class SafeTensorsHeaderWriter
{
    /// <summary>The Rust implementation's alignment of the data region's start.</summary>
    public const int HeaderAlignment = 8;

    /// <summary>Returns the padded header JSON bytes (without the length prefix).</summary>
    public static byte[] Serialize(IReadOnlyList<SafeTensorInfo> tensorsInDataOrder, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(SafeTensorsHeader.MetadataKey);
                foreach (KeyValuePair<string, string> pair in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
                    json.WriteString(pair.Key, pair.Value);
                json.WriteEndObject();
            }
            foreach (SafeTensorInfo tensor in tensorsInDataOrder)
            {
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", tensor.DType.HeaderName());
                json.WriteStartArray("shape");
                foreach (long dim in tensor.Shape) json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(tensor.DataOffset);
                json.WriteNumberValue(tensor.DataOffset + tensor.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int length = (int)buffer.Length;
        int padded = (length + HeaderAlignment - 1) / HeaderAlignment * HeaderAlignment;
        for (int i = length; i < padded; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
