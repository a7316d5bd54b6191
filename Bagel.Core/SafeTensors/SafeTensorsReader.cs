using System.IO.MemoryMappedFiles;
using Bagel.Core.Native;
using TorchSharp;

namespace Bagel.Core.SafeTensors;

/// <summary>
/// Reads one safetensors file through a read-only memory map. <see cref="Open"/> reads and validates only the
/// header; a tensor's pages are touched only when that tensor is read. Spans returned by <see cref="GetBytes"/>
/// stay valid until the reader is disposed. Reading is safe from several threads; disposing is not.
/// </summary>
public sealed unsafe class SafeTensorsReader : ISafeTensorsSource
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _data;
    private readonly Dictionary<string, SafeTensorInfo> _byName;
    private bool _disposed;

    private SafeTensorsReader(string path, SafeTensorsHeader.Parsed header, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* data)
    {
        Location = path;
        Metadata = header.Metadata;
        Tensors = header.Tensors;
        _byName = header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        _map = map;
        _view = view;
        _data = data;
    }

    /// <inheritdoc />
    public string Location { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <inheritdoc />
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>Opens a file, validating its header strictly (see <see cref="SafeTensorsFormatException"/>).</summary>
    /// <param name="path">The .safetensors file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="SafeTensorsFormatException">The header is malformed or does not match the file's size.</exception>
    public static SafeTensorsReader Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
            throw new FileNotFoundException($"The safetensors file '{fullPath}' does not exist.", fullPath);

        var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            SafeTensorsHeader.Parsed header = SafeTensorsHeader.Read(fullPath, stream);
            // The map owns the stream from here on (leaveOpen: false); mapping reads no data pages.
            map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
                HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* basePointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePointer);
            byte* data = basePointer + view.PointerOffset + header.DataStart;
            return new SafeTensorsReader(fullPath, header, map, view, data);
        }
        catch
        {
            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <inheritdoc />
    public SafeTensorInfo GetInfo(string name) =>
        _byName.TryGetValue(name, out SafeTensorInfo? info) ? info : throw new SafeTensorNotFoundException(Location, name);

    /// <summary>
    /// The raw bytes of a tensor, straight from the memory map (no copy). Valid until this reader is disposed.
    /// </summary>
    /// <param name="name">The tensor's key.</param>
    /// <exception cref="NotSupportedException">The tensor exceeds int.MaxValue bytes; use <see cref="CopyBytesTo"/> in pieces.</exception>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        SafeTensorInfo info = GetInfo(name);
        ThrowIfDisposed();
        if (info.ByteLength > int.MaxValue)
            throw new NotSupportedException(
                $"Tensor '{name}' in '{Location}' has {info.ByteLength} bytes, more than one span can hold; read it with CopyBytesTo in pieces or with ReadTensor.");
        return new ReadOnlySpan<byte>(_data + info.DataOffset, (int)info.ByteLength);
    }

    /// <inheritdoc />
    public void CopyBytesTo(string name, Span<byte> destination, long sourceOffset = 0)
    {
        SafeTensorInfo info = GetInfo(name);
        ThrowIfDisposed();
        if (sourceOffset < 0 || sourceOffset + destination.Length > info.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(sourceOffset),
                $"Bytes [{sourceOffset}, {sourceOffset + destination.Length}) are outside tensor '{name}' ({info.ByteLength} bytes) in '{Location}'.");
        new ReadOnlySpan<byte>(_data + info.DataOffset + sourceOffset, destination.Length).CopyTo(destination);
    }

    /// <inheritdoc />
    public torch.Tensor ReadTensor(string name, torch.ScalarType? dtype = null, torch.Device? device = null)
    {
        SafeTensorInfo info = GetInfo(name);
        ThrowIfDisposed();
        TorchRuntime.EnsureLoaded(device ?? torch.CPU);
        torch.ScalarType fileType = info.DType.ToScalarType();
        var staging = torch.empty(info.ShapeArray(), fileType);
        try
        {
            TensorBytes.Fill(_data + info.DataOffset, info.ByteLength, staging);
            bool sameType = dtype is null || dtype == fileType;
            bool onCpu = device is null || device.type == DeviceType.CPU;
            if (sameType && onCpu) return staging;
            using (staging)
                return staging.to(dtype ?? fileType, device ?? torch.CPU);
        }
        catch
        {
            staging.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void CopyInto(string name, torch.Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        SafeTensorInfo info = GetInfo(name);
        ThrowIfDisposed();
        TorchRuntime.EnsureLoaded(destination.device);
        if (!destination.shape.SequenceEqual(info.Shape))
            throw new ArgumentException(
                $"Tensor '{name}' in '{Location}' has shape {info.ShapeText}, but the destination has shape {SafeTensorInfo.FormatShape(destination.shape)}.",
                nameof(destination));

        torch.ScalarType fileType = info.DType.ToScalarType();
        if (destination.device_type == DeviceType.CPU && destination.dtype == fileType && destination.is_contiguous())
        {
            // Straight from the mapped pages into the destination's storage: no intermediate tensor.
            TensorBytes.Fill(_data + info.DataOffset, info.ByteLength, destination);
            return;
        }
        using var staging = torch.empty(info.ShapeArray(), fileType);
        TensorBytes.Fill(_data + info.DataOffset, info.ByteLength, staging);
        using (torch.no_grad())
            destination.copy_(staging);
    }

    /// <summary>Releases the memory map; spans handed out earlier become invalid.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
