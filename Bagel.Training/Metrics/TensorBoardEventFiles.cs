using System.Buffers.Binary;
using System.Numerics;
using Bagel.Training.Checkpoints;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.Metrics;

/// <summary>
/// Rewrites TensorBoard event files for a resumed run. The format is append-only (records of a little-endian uint64
/// length, the masked CRC-32C of those 8 bytes, the data, the masked CRC-32C of the data; the data an <c>Event</c>
/// protobuf whose field 2 is the step and field 3 the file version), so a run resumed at step N keeps each file's
/// records of steps before N, byte for byte, and drops the rest, a half-written last record included; the file is
/// replaced atomically. TensorBoard then reads every step once, whatever its own purge heuristics do.
/// </summary>
internal static class TensorBoardEventFiles
{
    /// <summary>The name TensorBoard writers give event files (TensorBoard reads every file that contains it).</summary>
    public const string FileNamePattern = "events.out.tfevents.*";

    /// <summary>Drops the events of step <paramref name="step"/> or later from every event file in <paramref name="logDir"/>.</summary>
    public static void DiscardFromStep(string logDir, long step, ILogger logger, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(logDir)) return;
        foreach (string file in Directory.EnumerateFiles(logDir, FileNamePattern).Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            byte[] bytes = File.ReadAllBytes(file);
            using var kept = new MemoryStream(bytes.Length);
            long keptCount = 0, dropped = 0, damaged = 0;
            int offset = 0;
            while (offset < bytes.Length)
            {
                if (!TryReadRecord(bytes, offset, out int length, out long? recordStep))
                {
                    damaged++; // a record cut off by a kill, or garbage: nothing after it can be framed
                    break;
                }
                int size = 8 + 4 + length + 4;
                if (recordStep is { } s && s >= step) dropped++;
                else
                {
                    kept.Write(bytes, offset, size);
                    keptCount++;
                }
                offset += size;
            }
            if (dropped == 0 && damaged == 0) continue;
            CheckpointFiles.WriteBytesAtomic(file, kept.GetBuffer().AsSpan(0, (int)kept.Length));
            if (damaged > 0) MetricsLog.DroppedDamaged(logger, file, damaged);
            MetricsLog.Discarded(logger, file, keptCount, dropped, step);
        }
    }

    /// <summary>Frames the record at <paramref name="offset"/>; its step is null for the file-version record (kept always).</summary>
    private static bool TryReadRecord(byte[] bytes, int offset, out int length, out long? step)
    {
        length = 0;
        step = null;
        if (bytes.Length - offset < 12) return false;
        ReadOnlySpan<byte> lengthBytes = bytes.AsSpan(offset, 8);
        ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 8, 4)) != MaskedCrc32C(lengthBytes)) return false;
        if (declared > (ulong)(bytes.Length - offset - 16)) return false;
        length = (int)declared;
        ReadOnlySpan<byte> data = bytes.AsSpan(offset + 12, length);
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 12 + length, 4)) != MaskedCrc32C(data)) return false;
        return TryReadStep(data, out step);
    }

    /// <summary>The Event's step (field 2; absent means 0), or null for a file-version event (field 3).</summary>
    private static bool TryReadStep(ReadOnlySpan<byte> data, out long? step)
    {
        long value = 0;
        bool fileVersion = false;
        int position = 0;
        step = null;
        while (position < data.Length)
        {
            if (!TryVarint(data, ref position, out ulong key)) return false;
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0:
                    if (!TryVarint(data, ref position, out ulong number)) return false;
                    if (field == 2) value = (long)number;
                    break;
                case 1: position += 8; break;
                case 5: position += 4; break;
                case 2:
                    if (!TryVarint(data, ref position, out ulong size) || size > (ulong)(data.Length - position)) return false;
                    if (field == 3) fileVersion = true;
                    position += (int)size;
                    break;
                default: return false;
            }
        }
        if (position != data.Length) return false;
        step = fileVersion ? null : value;
        return true;
    }

    private static bool TryVarint(ReadOnlySpan<byte> data, ref int position, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && position < data.Length; shift += 7)
        {
            byte b = data[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return true;
        }
        return false;
    }

    /// <summary>
    /// An <c>Event</c> (wall_time 1, step 2, summary 5) whose summary holds one value (tag 1) with a
    /// <c>Summary.Image</c> (field 4: height 1, width 2, colorspace 3, encoded_image_string 4), TensorBoard's image
    /// summary; colorspace 3 is RGB.
    /// </summary>
    public static byte[] ImageEvent(double wallTime, long step, string tag, int height, int width, int colorspace, ReadOnlySpan<byte> encoded)
    {
        using var image = new MemoryStream();
        WriteVarintField(image, 1, (ulong)height);
        WriteVarintField(image, 2, (ulong)width);
        WriteVarintField(image, 3, (ulong)colorspace);
        WriteBytesField(image, 4, encoded);
        using var value = new MemoryStream();
        WriteBytesField(value, 1, System.Text.Encoding.UTF8.GetBytes(tag));
        WriteBytesField(value, 4, image.ToArray());
        using var summary = new MemoryStream();
        WriteBytesField(summary, 1, value.ToArray());
        using var evnt = new MemoryStream();
        WriteVarint(evnt, (1 << 3) | 1);
        Span<byte> wall = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleLittleEndian(wall, wallTime);
        evnt.Write(wall);
        WriteVarintField(evnt, 2, (ulong)step);
        WriteBytesField(evnt, 5, summary.ToArray());
        return evnt.ToArray();
    }

    /// <summary>Appends one TFRecord (length, its masked CRC, the data, its masked CRC) to <paramref name="file"/> and flushes it.</summary>
    public static void AppendRecord(string file, ReadOnlySpan<byte> data)
    {
        byte[] record = new byte[8 + 4 + data.Length + 4];
        BinaryPrimitives.WriteUInt64LittleEndian(record, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(8), MaskedCrc32C(record.AsSpan(0, 8)));
        data.CopyTo(record.AsSpan(12));
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(12 + data.Length), MaskedCrc32C(data));
        using var stream = new FileStream(file, FileMode.Append, FileAccess.Write, FileShare.Read);
        stream.Write(record);
        stream.Flush(flushToDisk: true);
    }

    private static void WriteVarintField(Stream stream, int field, ulong value)
    {
        WriteVarint(stream, (ulong)(field << 3));
        WriteVarint(stream, value);
    }

    private static void WriteBytesField(Stream stream, int field, ReadOnlySpan<byte> bytes)
    {
        WriteVarint(stream, (ulong)((field << 3) | 2));
        WriteVarint(stream, (ulong)bytes.Length);
        stream.Write(bytes);
    }

    private static void WriteVarint(Stream stream, ulong value)
    {
        while (value >= 0x80)
        {
            stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        stream.WriteByte((byte)value);
    }

    /// <summary>TFRecord's masked CRC-32C (Castagnoli).</summary>
    private static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        crc ^= 0xFFFFFFFFu;
        return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
    }
}
