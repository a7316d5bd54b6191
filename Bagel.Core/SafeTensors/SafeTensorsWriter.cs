using System.Buffers.Binary;
using Bagel.Core.Native;
using TorchSharp;

namespace Bagel.Core.SafeTensors;

/// <summary>
/// Writes a safetensors file in one pass without holding more than one tensor: all tensors are declared up front
/// (the header is written at once), then each tensor's bytes are streamed in <see cref="Layout"/> order (sorted by
/// name, ordinal). The file is written under a temp name in the same folder and renamed on <see cref="Commit"/>,
/// after being flushed to disk; disposing without committing deletes the temp file and leaves no final file.
/// </summary>
public sealed class SafeTensorsWriter : IDisposable
{
    private readonly string _tempPath;
    private readonly FileStream _stream;
    private int _current;
    private long _writtenInCurrent;
    private bool _committed;
    private bool _disposed;

    private SafeTensorsWriter(string path, string tempPath, FileStream stream, IReadOnlyList<SafeTensorInfo> layout)
    {
        FilePath = path;
        _tempPath = tempPath;
        _stream = stream;
        Layout = layout;
    }

    /// <summary>The final path (the file appears there only on <see cref="Commit"/>).</summary>
    public string FilePath { get; }

    /// <summary>The tensors in the order their bytes must be written (sorted by name).</summary>
    public IReadOnlyList<SafeTensorInfo> Layout { get; }

    /// <summary>The tensor the next bytes belong to, or null when all bytes have been written.</summary>
    public SafeTensorInfo? Current => _current < Layout.Count ? Layout[_current] : null;

    /// <summary>Declares the tensors and writes the header to a temp file beside <paramref name="path"/>.</summary>
    /// <param name="path">The final file path; its folder must exist. An existing file is replaced on commit.</param>
    /// <param name="entries">Every tensor the file will hold; names must be unique.</param>
    /// <param name="metadata">String metadata for "__metadata__"; null or empty writes none.</param>
    /// <exception cref="ArgumentException">Duplicate or reserved names, or negative dimensions.</exception>
    public static SafeTensorsWriter Create(string path, IEnumerable<SafeTensorsEntry> entries, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(entries);
        string fullPath = Path.GetFullPath(path);
        IReadOnlyList<SafeTensorInfo> layout = PlanLayout(fullPath, entries);
        byte[] header = SafeTensorsHeaderWriter.Serialize(layout, metadata);

        string tempPath = AtomicFile.TempPathFor(fullPath);
        var stream = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        try
        {
            Span<byte> prefix = stackalloc byte[SafeTensorsHeader.LengthPrefixBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
        }
        catch
        {
            stream.Dispose();
            AtomicFile.TryDelete(tempPath);
            throw;
        }
        return new SafeTensorsWriter(fullPath, tempPath, stream, layout);
    }

    /// <summary>Writes a whole file from lazily produced tensors (one tensor in memory at a time), atomically.</summary>
    /// <param name="path">The final file path.</param>
    /// <param name="tensors">The tensors; each producer runs once, in name order.</param>
    /// <param name="metadata">String metadata; null writes none.</param>
    /// <param name="cancellationToken">Checked between tensors; cancelling leaves no file behind.</param>
    public static void WriteFile(string path, IEnumerable<PendingTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        TorchRuntime.EnsureLoaded();
        List<PendingTensor> pending = [.. tensors];
        Dictionary<string, PendingTensor> byName = pending.ToDictionary(p => p.Entry.Name, StringComparer.Ordinal);
        using SafeTensorsWriter writer = Create(path, pending.Select(p => p.Entry), metadata);
        foreach (SafeTensorInfo info in writer.Layout)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            writer.WriteTensor(info.Name, byName[info.Name].Produce());
        }
        writer.Commit();
    }

    /// <summary>
    /// Writes all bytes of the current tensor from a TorchSharp tensor of its shape (converted to the declared dtype
    /// and copied to the CPU if needed; temporaries are disposed at once).
    /// </summary>
    /// <param name="name">The tensor's name; must be <see cref="Current"/>'s.</param>
    /// <param name="tensor">The values; not disposed.</param>
    /// <exception cref="InvalidOperationException">Out of order, or bytes of the current tensor were already written.</exception>
    /// <exception cref="ArgumentException">The shape differs from the declared shape.</exception>
    public void WriteTensor(string name, torch.Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        SafeTensorInfo info = Expect(name);
        if (_writtenInCurrent != 0)
            throw new InvalidOperationException($"Tensor '{name}' of '{FilePath}' was already partly written through WriteBytes.");
        if (!tensor.shape.SequenceEqual(info.Shape))
            throw new ArgumentException(
                $"Tensor '{name}' was declared with shape {info.ShapeText} for '{FilePath}', but the tensor has shape {SafeTensorInfo.FormatShape(tensor.shape)}.",
                nameof(tensor));
        TorchRuntime.EnsureLoaded();
        torch.ScalarType fileType = info.DType.ToScalarType();
        torch.Tensor cpu = tensor;
        var temporaries = new List<torch.Tensor>();
        try
        {
            if (cpu.dtype != fileType || cpu.device_type != DeviceType.CPU)
                temporaries.Add(cpu = cpu.to(fileType, torch.CPU));
            if (!cpu.is_contiguous())
                temporaries.Add(cpu = cpu.contiguous());
            TensorBytes.WriteTo(cpu, _stream);
        }
        finally
        {
            foreach (torch.Tensor temporary in temporaries) temporary.Dispose();
        }
        Advance(info.ByteLength);
    }

    /// <summary>Appends raw bytes to the current tensor (may be called several times per tensor, never across two).</summary>
    /// <param name="bytes">The next bytes, in the file's byte order (little-endian).</param>
    /// <exception cref="InvalidOperationException">More bytes than the current tensor holds, or none is left.</exception>
    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        ThrowIfClosed();
        if (bytes.IsEmpty) return;
        SkipEmptyTensors();
        SafeTensorInfo info = Current ?? throw new InvalidOperationException($"All tensors of '{FilePath}' are written; call Commit().");
        if (_writtenInCurrent + bytes.Length > info.ByteLength)
            throw new InvalidOperationException(
                $"Tensor '{info.Name}' of '{FilePath}' holds {info.ByteLength} bytes; writing {bytes.Length} more after {_writtenInCurrent} would cross into the next tensor.");
        _stream.Write(bytes);
        Advance(bytes.Length);
    }

    /// <summary>Checks that every byte was written, flushes to disk and renames the temp file to <see cref="FilePath"/>.</summary>
    /// <exception cref="InvalidOperationException">Some tensors were not written (the temp file is deleted).</exception>
    public void Commit()
    {
        ThrowIfClosed();
        try
        {
            SkipEmptyTensors();
            if (Current is { } missing)
                throw new InvalidOperationException(
                    $"Cannot commit '{FilePath}': tensor '{missing.Name}' and {Layout.Count - _current - 1} after it were not fully written.");
            _stream.Flush(flushToDisk: true);
            _stream.Dispose();
            File.Move(_tempPath, FilePath, overwrite: true);
            _committed = true;
        }
        finally
        {
            if (!_committed) Dispose();
        }
    }

    /// <summary>Closes the writer; without a successful <see cref="Commit"/>, deletes the temp file.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stream.Dispose();
        if (!_committed) AtomicFile.TryDelete(_tempPath);
    }

    private static IReadOnlyList<SafeTensorInfo> PlanLayout(string path, IEnumerable<SafeTensorsEntry> entries)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var layout = new List<SafeTensorInfo>();
        long offset = 0;
        foreach (SafeTensorsEntry entry in entries.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (string.IsNullOrEmpty(entry.Name) || entry.Name == SafeTensorsHeader.MetadataKey)
                throw new ArgumentException($"'{entry.Name}' is not a valid tensor name for '{path}'.", nameof(entries));
            if (!names.Add(entry.Name))
                throw new ArgumentException($"Tensor '{entry.Name}' is declared twice for '{path}'.", nameof(entries));
            if (entry.Shape.Any(d => d < 0))
                throw new ArgumentException($"Tensor '{entry.Name}' for '{path}' has a negative dimension in {SafeTensorInfo.FormatShape(entry.Shape)}.", nameof(entries));
            layout.Add(new SafeTensorInfo(entry.Name, entry.DType, [.. entry.Shape], offset, entry.ByteLength));
            offset += entry.ByteLength;
        }
        return layout;
    }

    private SafeTensorInfo Expect(string name)
    {
        ThrowIfClosed();
        SafeTensorInfo info = Current ?? throw new InvalidOperationException($"All tensors of '{FilePath}' are written; '{name}' is extra.");
        if (!string.Equals(info.Name, name, StringComparison.Ordinal))
            throw new InvalidOperationException($"'{FilePath}' expects tensor '{info.Name}' next (Layout order), not '{name}'.");
        return info;
    }

    private void Advance(long bytes)
    {
        _writtenInCurrent += bytes;
        if (Current is { } info && _writtenInCurrent == info.ByteLength)
        {
            _current++;
            _writtenInCurrent = 0;
        }
    }

    /// <summary>Empty tensors need no bytes; raw-byte writers and Commit step over them.</summary>
    private void SkipEmptyTensors()
    {
        while (Current is { ByteLength: 0 }) _current++;
    }

    private void ThrowIfClosed()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_committed) throw new InvalidOperationException($"'{FilePath}' is already committed.");
    }
}
