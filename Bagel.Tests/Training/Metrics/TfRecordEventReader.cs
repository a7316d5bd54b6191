using System.Buffers.Binary;
using System.Text;

namespace Bagel.Tests.Training.Metrics;

/// <summary>
/// An independent reader of TensorBoard event files, written from the format description only: records of
/// uint64 length, masked CRC-32C of those 8 bytes, the data, masked CRC-32C of the data; the data is an Event protobuf
/// of which we decode wall_time (1, double), step (2, varint), file_version (3, string) and summary (5) with its
/// values (1) of tag (1, string) and simple_value (2, float).
/// </summary>
internal static class TfRecordEventReader
{
    internal sealed record ScalarValue(string Tag, float SimpleValue, ImageValue? Image = null);

    /// <summary>A <c>Summary.Image</c> (value field 4): height 1, width 2, colorspace 3, encoded_image_string 4.</summary>
    internal sealed record ImageValue(int Height, int Width, int Colorspace, byte[] Encoded);

    internal sealed record Event(double WallTime, long Step, string? FileVersion, IReadOnlyList<ScalarValue> Values);

    private static readonly uint[] CrcTable = BuildTable();

    public static List<Event> Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var events = new List<Event>();
        int offset = 0;
        while (offset < bytes.Length)
        {
            if (bytes.Length - offset < 12) throw new InvalidDataException($"{path}: truncated record header at byte {offset}.");
            ReadOnlySpan<byte> lengthBytes = bytes.AsSpan(offset, 8);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            uint lengthCrc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 8, 4));
            if (lengthCrc != MaskedCrc32C(lengthBytes)) throw new InvalidDataException($"{path}: length CRC mismatch at byte {offset}.");
            offset += 12;
            if ((ulong)(bytes.Length - offset) < length + 4) throw new InvalidDataException($"{path}: truncated record data at byte {offset}.");
            ReadOnlySpan<byte> data = bytes.AsSpan(offset, (int)length);
            uint dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + (int)length, 4));
            if (dataCrc != MaskedCrc32C(data)) throw new InvalidDataException($"{path}: data CRC mismatch at byte {offset}.");
            events.Add(DecodeEvent(data));
            offset += (int)length + 4;
        }
        return events;
    }

    public static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        crc ^= 0xFFFFFFFFu;
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }

    private static uint[] BuildTable()
    {
        const uint castagnoliReversed = 0x82F63B78u;
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? castagnoliReversed ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return table;
    }

    private static Event DecodeEvent(ReadOnlySpan<byte> data)
    {
        double wallTime = 0;
        long step = 0;
        string? fileVersion = null;
        var values = new List<ScalarValue>();
        int position = 0;
        while (position < data.Length)
        {
            (int field, int wire) = Key(data, ref position);
            switch (field, wire)
            {
                case (1, 1): wallTime = BinaryPrimitives.ReadDoubleLittleEndian(data.Slice(position, 8)); position += 8; break;
                case (2, 0): step = (long)Varint(data, ref position); break;
                case (3, 2): fileVersion = Encoding.UTF8.GetString(LengthDelimited(data, ref position)); break;
                case (5, 2): values.AddRange(DecodeSummary(LengthDelimited(data, ref position))); break;
                default: Skip(data, ref position, wire); break;
            }
        }
        return new Event(wallTime, step, fileVersion, values);
    }

    private static List<ScalarValue> DecodeSummary(ReadOnlySpan<byte> summary)
    {
        var values = new List<ScalarValue>();
        int position = 0;
        while (position < summary.Length)
        {
            (int field, int wire) = Key(summary, ref position);
            if (field == 1 && wire == 2) values.Add(DecodeValue(LengthDelimited(summary, ref position)));
            else Skip(summary, ref position, wire);
        }
        return values;
    }

    private static ScalarValue DecodeValue(ReadOnlySpan<byte> value)
    {
        string tag = "";
        float simple = float.NaN;
        ImageValue? image = null;
        int position = 0;
        while (position < value.Length)
        {
            (int field, int wire) = Key(value, ref position);
            if (field == 1 && wire == 2) tag = Encoding.UTF8.GetString(LengthDelimited(value, ref position));
            else if (field == 2 && wire == 5) { simple = BinaryPrimitives.ReadSingleLittleEndian(value.Slice(position, 4)); position += 4; }
            else if (field == 4 && wire == 2) image = DecodeImage(LengthDelimited(value, ref position));
            else Skip(value, ref position, wire);
        }
        return new ScalarValue(tag, simple, image);
    }

    private static ImageValue DecodeImage(ReadOnlySpan<byte> image)
    {
        int height = 0, width = 0, colorspace = 0;
        byte[] encoded = [];
        int position = 0;
        while (position < image.Length)
        {
            (int field, int wire) = Key(image, ref position);
            switch (field, wire)
            {
                case (1, 0): height = (int)Varint(image, ref position); break;
                case (2, 0): width = (int)Varint(image, ref position); break;
                case (3, 0): colorspace = (int)Varint(image, ref position); break;
                case (4, 2): encoded = LengthDelimited(image, ref position).ToArray(); break;
                default: Skip(image, ref position, wire); break;
            }
        }
        return new ImageValue(height, width, colorspace, encoded);
    }

    private static (int Field, int Wire) Key(ReadOnlySpan<byte> data, ref int position)
    {
        ulong key = Varint(data, ref position);
        return ((int)(key >> 3), (int)(key & 7));
    }

    private static ulong Varint(ReadOnlySpan<byte> data, ref int position)
    {
        ulong result = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = data[position++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
    }

    private static ReadOnlySpan<byte> LengthDelimited(ReadOnlySpan<byte> data, ref int position)
    {
        int length = (int)Varint(data, ref position);
        ReadOnlySpan<byte> slice = data.Slice(position, length);
        position += length;
        return slice;
    }

    private static void Skip(ReadOnlySpan<byte> data, ref int position, int wire)
    {
        switch (wire)
        {
            case 0: Varint(data, ref position); break;
            case 1: position += 8; break;
            case 2: LengthDelimited(data, ref position); break;
            case 5: position += 4; break;
            default: throw new InvalidDataException($"Unsupported protobuf wire type {wire}.");
        }
    }
}
