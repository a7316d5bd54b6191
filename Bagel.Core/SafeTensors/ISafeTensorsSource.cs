using TorchSharp;

namespace Bagel.Core.SafeTensors;

/// <summary>
/// A read-only, lazily read set of named tensors: one safetensors file (<see cref="SafeTensorsReader"/>) or a
/// sharded checkpoint (<see cref="ShardedSafeTensorsReader"/>). A tensor's bytes are read only when asked for.
/// </summary>
public interface ISafeTensorsSource : IDisposable
{
    /// <summary>The file (or index file) this source reads; errors name it.</summary>
    string Location { get; }

    /// <summary>String metadata (the "__metadata__" block, or an index's "metadata"). Empty when absent.</summary>
    IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Every tensor, in the order their bytes lie on disk (shard by shard for a sharded checkpoint).</summary>
    IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>Whether a tensor of that name exists.</summary>
    /// <param name="name">The tensor's key.</param>
    bool Contains(string name);

    /// <summary>The header entry of a tensor.</summary>
    /// <param name="name">The tensor's key.</param>
    /// <exception cref="SafeTensorNotFoundException">No such tensor.</exception>
    SafeTensorInfo GetInfo(string name);

    /// <summary>
    /// Reads a tensor into a new TorchSharp tensor. Defaults: the file's dtype, on the CPU.
    /// </summary>
    /// <param name="name">The tensor's key.</param>
    /// <param name="dtype">Convert to this dtype (e.g. BF16 file to float32); null keeps the file's dtype.</param>
    /// <param name="device">Place the tensor on this device; null means the CPU.</param>
    /// <exception cref="SafeTensorNotFoundException">No such tensor.</exception>
    torch.Tensor ReadTensor(string name, torch.ScalarType? dtype = null, torch.Device? device = null);

    /// <summary>
    /// Copies a tensor into an existing tensor of the same shape (any dtype, any device), converting the dtype
    /// on the way, without autograd tracking. A CPU, contiguous destination of the file's dtype is filled straight
    /// from the file's bytes; otherwise at most one staging copy of this one tensor is made.
    /// </summary>
    /// <param name="name">The tensor's key.</param>
    /// <param name="destination">The tensor to overwrite (for example a module parameter).</param>
    /// <exception cref="SafeTensorNotFoundException">No such tensor.</exception>
    /// <exception cref="ArgumentException">The destination's shape differs from the stored shape.</exception>
    void CopyInto(string name, torch.Tensor destination);

    /// <summary>Copies <paramref name="destination"/>.Length raw bytes of a tensor, starting at <paramref name="sourceOffset"/>.</summary>
    /// <param name="name">The tensor's key.</param>
    /// <param name="destination">Where the bytes go; its length is how many bytes are copied.</param>
    /// <param name="sourceOffset">Offset into the tensor's bytes (default 0).</param>
    /// <exception cref="ArgumentOutOfRangeException">The range exceeds the tensor's bytes.</exception>
    void CopyBytesTo(string name, Span<byte> destination, long sourceOffset = 0);
}
