using System.Buffers.Binary;
using System.Text.Json;

namespace Bagel.Core.SafeTensors;

/// <summary>
/// Parses and strictly validates a safetensors header: an 8-byte little-endian length N, N bytes of UTF-8 JSON,
/// then the data region, which the tensors' data_offsets must cover exactly, in order, without gaps or overlaps.
/// </summary>
internal static class SafeTensorsHeader
{
    /// <summary>Size of the little-endian u64 that precedes the JSON header.</summary>
    public const int LengthPrefixBytes = 8;

    /// <summary>The Rust implementation's MAX_HEADER_SIZE (100 MB): a larger header is treated as corrupt, not allocated.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The reserved key holding string-to-string metadata.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>The parsed header: metadata and tensors in data-offset order.</summary>
    public sealed record Parsed(IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<SafeTensorInfo> Tensors, long DataStart);

    /// <summary>Reads and validates the header of the file behind <paramref name="stream"/> (only the header bytes are read).</summary>
    public static Parsed Read(string path, Stream stream)
    {
        long fileLength = stream.Length;
        if (fileLength < LengthPrefixBytes)
            throw new SafeTensorsFormatException(path, null, "header length",
                $"the file has {fileLength} bytes, fewer than the {LengthPrefixBytes}-byte header length prefix.");
        Span<byte> prefix = stackalloc byte[LengthPrefixBytes];
        stream.Position = 0;
        stream.ReadExactly(prefix);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(fileLength - LengthPrefixBytes))
            throw new SafeTensorsFormatException(path, null, "header length",
                $"the header length prefix says {headerLength} bytes, but only {fileLength - LengthPrefixBytes} bytes follow it (the file is truncated or not safetensors).");
        if (headerLength > MaxHeaderBytes)
            throw new SafeTensorsFormatException(path, null, "header length",
                $"the header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit.");
        byte[] json = new byte[headerLength];
        stream.ReadExactly(json);
        long dataStart = LengthPrefixBytes + (long)headerLength;
        return Parse(path, json, fileLength - dataStart, dataStart);
    }

    /// <summary>Validates header JSON against a data region of <paramref name="dataLength"/> bytes.</summary>
    public static Parsed Parse(string path, ReadOnlySpan<byte> json, long dataLength, long dataStart)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException ex)
        {
            throw new SafeTensorsFormatException(path, null, "header", $"the header is not valid JSON ({ex.Message}).", ex);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(path, null, "header", $"the header must be a JSON object, found {root.ValueKind}.");

            var seen = new HashSet<string>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new List<SafeTensorInfo>();
            foreach (JsonProperty property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new SafeTensorsFormatException(path, property.Name == MetadataKey ? null : property.Name,
                        property.Name == MetadataKey ? MetadataKey : null, $"the key '{property.Name}' appears twice in the header.");
                if (property.Name == MetadataKey)
                    ReadMetadata(path, property.Value, metadata);
                else
                    tensors.Add(ReadTensor(path, property.Name, property.Value));
            }

            tensors.Sort((a, b) => a.DataOffset != b.DataOffset ? a.DataOffset.CompareTo(b.DataOffset) : a.ByteLength.CompareTo(b.ByteLength));
            CheckCoverage(path, tensors, dataLength);
            return new Parsed(metadata, tensors, dataStart);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(path, null, MetadataKey, $"'{MetadataKey}' must be an object of strings, found {value.ValueKind}.");
        foreach (JsonProperty entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new SafeTensorsFormatException(path, null, $"{MetadataKey}.{entry.Name}",
                    $"metadata values must be strings, but '{entry.Name}' is {entry.Value.ValueKind}.");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw new SafeTensorsFormatException(path, null, $"{MetadataKey}.{entry.Name}", $"the metadata key '{entry.Name}' appears twice.");
        }
    }

    private static SafeTensorInfo ReadTensor(string path, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(path, name, null, $"the entry must be an object with dtype, shape and data_offsets, found {value.ValueKind}.");

        JsonElement dtypeElement = Required(path, name, value, "dtype", JsonValueKind.String);
        string dtypeName = dtypeElement.GetString()!;
        if (!SafeTensorDTypes.TryParse(dtypeName, out SafeTensorDType dtype))
            throw new SafeTensorsFormatException(path, name, "dtype",
                $"unknown dtype '{dtypeName}' (supported: {string.Join(", ", Enum.GetNames<SafeTensorDType>())}).");

        JsonElement shapeElement = Required(path, name, value, "shape", JsonValueKind.Array);
        var shape = new List<long>();
        foreach (JsonElement dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long size))
                throw new SafeTensorsFormatException(path, name, "shape", $"dimension '{dim.GetRawText()}' is not an integer.");
            if (size < 0)
                throw new SafeTensorsFormatException(path, name, "shape", $"dimension {size} is negative.");
            shape.Add(size);
        }

        JsonElement offsetsElement = Required(path, name, value, "data_offsets", JsonValueKind.Array);
        if (offsetsElement.GetArrayLength() != 2)
            throw new SafeTensorsFormatException(path, name, "data_offsets", $"expected [begin, end], found {offsetsElement.GetRawText()}.");
        long begin = ReadOffset(path, name, offsetsElement[0]);
        long end = ReadOffset(path, name, offsetsElement[1]);
        if (end < begin)
            throw new SafeTensorsFormatException(path, name, "data_offsets", $"offsets [{begin}, {end}] are out of range: end is before begin.");

        long expectedBytes;
        try
        {
            expectedBytes = checked(shape.Aggregate(1L, (count, d) => checked(count * d)) * dtype.ElementSize());
        }
        catch (OverflowException)
        {
            throw new SafeTensorsFormatException(path, name, "shape", $"shape {SafeTensorInfo.FormatShape(shape)} is too large to address.");
        }
        if (expectedBytes != end - begin)
            throw new SafeTensorsFormatException(path, name, "shape",
                $"shape {SafeTensorInfo.FormatShape(shape)} with dtype {dtypeName} needs {expectedBytes} bytes, but data_offsets [{begin}, {end}] hold {end - begin}.");
        return new SafeTensorInfo(name, dtype, shape, begin, end - begin);
    }

    private static JsonElement Required(string path, string name, JsonElement entry, string field, JsonValueKind kind)
    {
        if (!entry.TryGetProperty(field, out JsonElement element))
            throw new SafeTensorsFormatException(path, name, field, $"the entry has no '{field}'.");
        if (element.ValueKind != kind)
            throw new SafeTensorsFormatException(path, name, field, $"'{field}' must be {kind}, found {element.ValueKind}.");
        return element;
    }

    private static long ReadOffset(string path, string name, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out long offset) || offset < 0)
            throw new SafeTensorsFormatException(path, name, "data_offsets", $"offset '{element.GetRawText()}' is out of range (must be a non-negative 64-bit integer).");
        return offset;
    }

    /// <summary>The tensors (sorted by offset) must tile [0, dataLength) exactly.</summary>
    private static void CheckCoverage(string path, List<SafeTensorInfo> tensors, long dataLength)
    {
        long expected = 0;
        SafeTensorInfo? previous = null;
        foreach (SafeTensorInfo tensor in tensors)
        {
            if (tensor.DataOffset > expected)
                throw new SafeTensorsFormatException(path, tensor.Name, "data_offsets",
                    $"its data starts at {tensor.DataOffset}, leaving a gap of {tensor.DataOffset - expected} bytes after {(previous is null ? "the start of the data region" : $"tensor '{previous.Name}'")} (which ends at {expected}).");
            if (tensor.DataOffset < expected)
                throw new SafeTensorsFormatException(path, tensor.Name, "data_offsets",
                    $"its data [{tensor.DataOffset}, {tensor.DataOffset + tensor.ByteLength}) overlaps tensor '{previous!.Name}' (which ends at {expected}).");
            expected = tensor.DataOffset + tensor.ByteLength;
            previous = tensor;
        }
        if (expected > dataLength)
            throw new SafeTensorsFormatException(path, previous!.Name, "data_offsets",
                $"the file is truncated: its data ends at {expected}, but the data region holds only {dataLength} bytes.");
        if (expected < dataLength)
            throw new SafeTensorsFormatException(path, null, "data region",
                $"the data region holds {dataLength} bytes, but the tensors cover only {expected} (trailing bytes after the last tensor).");
    }
}
