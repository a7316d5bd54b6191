using TorchSharp;

namespace Bagel.Core.SafeTensors;

/// <summary>The element types a safetensors file may declare (the subset Bagel.NET reads and writes).</summary>
public enum SafeTensorDType
{
    /// <summary>64-bit IEEE float ("F64").</summary>
    F64,
    /// <summary>32-bit IEEE float ("F32").</summary>
    F32,
    /// <summary>16-bit IEEE float ("F16").</summary>
    F16,
    /// <summary>bfloat16 ("BF16").</summary>
    BF16,
    /// <summary>64-bit signed integer ("I64").</summary>
    I64,
    /// <summary>32-bit signed integer ("I32").</summary>
    I32,
    /// <summary>16-bit signed integer ("I16").</summary>
    I16,
    /// <summary>8-bit signed integer ("I8").</summary>
    I8,
    /// <summary>8-bit unsigned integer ("U8").</summary>
    U8,
    /// <summary>Boolean stored as one byte ("BOOL").</summary>
    BOOL,
}

/// <summary>Conversions between <see cref="SafeTensorDType"/>, header names and TorchSharp scalar types.</summary>
public static class SafeTensorDTypes
{
    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    /// <param name="dtype">The element type.</param>
    public static int ElementSize(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F64 or SafeTensorDType.I64 => 8,
        SafeTensorDType.F32 or SafeTensorDType.I32 => 4,
        SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.I16 => 2,
        SafeTensorDType.I8 or SafeTensorDType.U8 or SafeTensorDType.BOOL => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>The name the safetensors header uses for <paramref name="dtype"/> (e.g. "BF16").</summary>
    /// <param name="dtype">The element type.</param>
    public static string HeaderName(this SafeTensorDType dtype) => dtype switch
    {
        >= SafeTensorDType.F64 and <= SafeTensorDType.BOOL => dtype.ToString(),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>Parses a header dtype name (case-sensitive, as the format requires).</summary>
    /// <param name="headerName">The "dtype" value from a header.</param>
    /// <param name="dtype">The parsed element type.</param>
    /// <returns>Whether <paramref name="headerName"/> names a supported dtype.</returns>
    public static bool TryParse(string headerName, out SafeTensorDType dtype)
    {
        dtype = default;
        foreach (SafeTensorDType candidate in Enum.GetValues<SafeTensorDType>())
        {
            if (string.Equals(candidate.ToString(), headerName, StringComparison.Ordinal))
            {
                dtype = candidate;
                return true;
            }
        }
        return false;
    }

    /// <summary>The TorchSharp scalar type holding the same bytes.</summary>
    /// <param name="dtype">The element type.</param>
    public static torch.ScalarType ToScalarType(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F64 => torch.ScalarType.Float64,
        SafeTensorDType.F32 => torch.ScalarType.Float32,
        SafeTensorDType.F16 => torch.ScalarType.Float16,
        SafeTensorDType.BF16 => torch.ScalarType.BFloat16,
        SafeTensorDType.I64 => torch.ScalarType.Int64,
        SafeTensorDType.I32 => torch.ScalarType.Int32,
        SafeTensorDType.I16 => torch.ScalarType.Int16,
        SafeTensorDType.I8 => torch.ScalarType.Int8,
        SafeTensorDType.U8 => torch.ScalarType.Byte,
        SafeTensorDType.BOOL => torch.ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>The safetensors dtype for a TorchSharp scalar type.</summary>
    /// <param name="scalarType">The TorchSharp scalar type.</param>
    /// <exception cref="NotSupportedException">The type has no safetensors counterpart here (complex types, for example).</exception>
    public static SafeTensorDType FromScalarType(torch.ScalarType scalarType) => scalarType switch
    {
        torch.ScalarType.Float64 => SafeTensorDType.F64,
        torch.ScalarType.Float32 => SafeTensorDType.F32,
        torch.ScalarType.Float16 => SafeTensorDType.F16,
        torch.ScalarType.BFloat16 => SafeTensorDType.BF16,
        torch.ScalarType.Int64 => SafeTensorDType.I64,
        torch.ScalarType.Int32 => SafeTensorDType.I32,
        torch.ScalarType.Int16 => SafeTensorDType.I16,
        torch.ScalarType.Int8 => SafeTensorDType.I8,
        torch.ScalarType.Byte => SafeTensorDType.U8,
        torch.ScalarType.Bool => SafeTensorDType.BOOL,
        _ => throw new NotSupportedException(
            $"TorchSharp dtype {scalarType} cannot be stored in safetensors by Bagel.NET; convert it to one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL first."),
    };
}
