namespace Bagel.Core.SafeTensors;

/// <summary>One tensor as its safetensors header declares it.</summary>
/// <param name="Name">The tensor's key in the header.</param>
/// <param name="DType">The element type.</param>
/// <param name="Shape">The dimensions (empty for a scalar).</param>
/// <param name="DataOffset">Start of the tensor's bytes, relative to the start of the data region.</param>
/// <param name="ByteLength">Number of bytes (element count times element size).</param>
public sealed record SafeTensorInfo(string Name, SafeTensorDType DType, IReadOnlyList<long> Shape, long DataOffset, long ByteLength)
{
    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (count, dim) => count * dim);

    /// <summary>The shape as an array, as TorchSharp factories take it.</summary>
    public long[] ShapeArray() => [.. Shape];

    /// <summary>The shape written as "[2, 3]", for messages.</summary>
    public string ShapeText => FormatShape(Shape);

    /// <summary>Writes a shape as "[2, 3]".</summary>
    /// <param name="shape">The dimensions.</param>
    public static string FormatShape(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";
}
