namespace Bagel.Core.SafeTensors;

/// <summary>A tensor was asked for by a name the safetensors file or checkpoint does not hold.</summary>
public sealed class SafeTensorNotFoundException : KeyNotFoundException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="filePath">The file or index that was searched.</param>
    /// <param name="tensorName">The missing tensor.</param>
    public SafeTensorNotFoundException(string filePath, string tensorName)
        : base($"Tensor '{tensorName}' is not in '{filePath}'. Check the name against the file's tensor list (SafeTensorsReader.Tensors).")
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file or index that was searched.</summary>
    public string FilePath { get; }

    /// <summary>The missing tensor's name.</summary>
    public string TensorName { get; }
}
