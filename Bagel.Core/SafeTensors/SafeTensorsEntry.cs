using TorchSharp;

namespace Bagel.Core.SafeTensors;

/// <summary>A tensor declared to <see cref="SafeTensorsWriter"/> before its bytes are written.</summary>
/// <param name="Name">The tensor's key (must not be "__metadata__").</param>
/// <param name="DType">The element type stored in the file.</param>
/// <param name="Shape">The dimensions (empty for a scalar); none negative.</param>
public sealed record SafeTensorsEntry(string Name, SafeTensorDType DType, IReadOnlyList<long> Shape)
{
    /// <summary>Number of bytes the tensor occupies in the file.</summary>
    public long ByteLength => checked(Shape.Aggregate(1L, (count, dim) => checked(count * dim)) * DType.ElementSize());

    /// <summary>Declares a tensor with the shape of <paramref name="tensor"/>, stored as <paramref name="dtype"/> (default: the tensor's dtype).</summary>
    /// <param name="name">The tensor's key.</param>
    /// <param name="tensor">The tensor whose shape (and, by default, dtype) to declare; it is not read.</param>
    /// <param name="dtype">The dtype to store; null keeps the tensor's.</param>
    public static SafeTensorsEntry For(string name, torch.Tensor tensor, SafeTensorDType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return new SafeTensorsEntry(name, dtype ?? SafeTensorDTypes.FromScalarType(tensor.dtype), tensor.shape);
    }
}

/// <summary>
/// A declared tensor plus a function that produces its values when the writer reaches it, so that only one
/// tensor's bytes need to exist at a time. Tensors the producer creates are disposed after they are written
/// (the writer runs it inside a dispose scope); tensors it merely returns, such as module parameters, are not.
/// </summary>
/// <param name="Entry">Name, dtype and shape.</param>
/// <param name="Produce">Returns the tensor (any device, any dtype: it is converted to <see cref="SafeTensorsEntry.DType"/>).</param>
public sealed record PendingTensor(SafeTensorsEntry Entry, Func<torch.Tensor> Produce)
{
    /// <summary>Declares an existing tensor, optionally stored as another dtype.</summary>
    /// <param name="name">The tensor's key.</param>
    /// <param name="tensor">The tensor (kept alive by the caller until written).</param>
    /// <param name="dtype">The dtype to store; null keeps the tensor's.</param>
    public static PendingTensor From(string name, torch.Tensor tensor, SafeTensorDType? dtype = null) =>
        new(SafeTensorsEntry.For(name, tensor, dtype), () => tensor);
}
