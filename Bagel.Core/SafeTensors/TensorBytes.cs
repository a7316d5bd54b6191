using TorchSharp;

namespace Bagel.Core.SafeTensors;

/// <summary>
/// Moves raw bytes between memory and CPU-contiguous tensors in chunks, because TorchSharp exposes a tensor's
/// bytes as a <see cref="Span{T}"/>, which cannot exceed int.MaxValue bytes.
/// </summary>
internal static class TensorBytes
{
    /// <summary>Largest chunk copied through one span (256 MiB keeps well inside int.MaxValue).</summary>
    public const long ChunkBytes = 256L * 1024 * 1024;

    /// <summary>Copies <paramref name="length"/> bytes from <paramref name="source"/> into a CPU, contiguous tensor.</summary>
    public static unsafe void Fill(byte* source, long length, torch.Tensor destination, long chunkBytes = ChunkBytes)
    {
        if (length == 0) return;
        ForEachChunk(destination, chunkBytes, (span, byteOffset) => new ReadOnlySpan<byte>(source + byteOffset, span.Length).CopyTo(span));
    }

    /// <summary>Copies managed bytes into a CPU, contiguous tensor (same chunking as the pointer overload).</summary>
    public static unsafe void Fill(ReadOnlySpan<byte> source, torch.Tensor destination, long chunkBytes = ChunkBytes)
    {
        fixed (byte* pointer = source)
            Fill(pointer, source.Length, destination, chunkBytes);
    }

    /// <summary>Writes the bytes of a CPU, contiguous tensor to <paramref name="stream"/>.</summary>
    public static void WriteTo(torch.Tensor source, Stream stream, long chunkBytes = ChunkBytes)
    {
        if (source.NumberOfElements == 0) return;
        ForEachChunk(source, chunkBytes, (span, _) => stream.Write(span));
    }

    private delegate void ChunkAction(Span<byte> chunk, long byteOffset);

    private static void ForEachChunk(torch.Tensor tensor, long chunkBytes, ChunkAction action)
    {
        long elementSize = tensor.ElementSize;
        long total = tensor.NumberOfElements;
        if (total * elementSize <= chunkBytes)
        {
            action(tensor.bytes, 0);
            return;
        }
        long chunkElements = Math.Max(1, chunkBytes / elementSize);
        using var flat = tensor.view(-1);
        for (long start = 0; start < total; start += chunkElements)
        {
            using var part = flat.narrow(0, start, Math.Min(chunkElements, total - start));
            action(part.bytes, start * elementSize);
        }
    }
}
