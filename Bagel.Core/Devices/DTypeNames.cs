using System.Diagnostics.CodeAnalysis;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Devices;

/// <summary>
/// Parses the floating-point dtype names Bagel.NET accepts for parameters and compute: <c>float32</c> / <c>fp32</c> /
/// <c>f32</c>, <c>bfloat16</c> / <c>bf16</c>, <c>float16</c> / <c>fp16</c> / <c>f16</c> (case-insensitive; a leading
/// <c>torch.</c> is allowed, so <c>torch.bfloat16</c> works too).
/// </summary>
public static class DTypeNames
{
    /// <summary>The canonical name of <see cref="ScalarType.Float32"/> (the default parameter dtype).</summary>
    public const string Float32 = "float32";

    /// <summary>The canonical name of <see cref="ScalarType.BFloat16"/> (the reference's FSDP compute dtype, model.md §10).</summary>
    public const string BFloat16 = "bfloat16";

    /// <summary>The canonical name of <see cref="ScalarType.Float16"/>.</summary>
    public const string Float16 = "float16";

    /// <summary>The accepted names, for error messages.</summary>
    public const string AcceptedNames = "'float32' (also 'fp32', 'f32'), 'bfloat16' (also 'bf16'), 'float16' (also 'fp16', 'f16')";

    private const string TorchPrefix = "torch.";

    /// <summary>Parses <paramref name="name"/> into a TorchSharp scalar type.</summary>
    /// <param name="name">The dtype name.</param>
    /// <returns>The scalar type.</returns>
    /// <exception cref="ComputeSettingException">The name is not one of the accepted names.</exception>
    public static ScalarType Parse(string? name)
    {
        if (TryParse(name, out ScalarType dtype)) return dtype;
        throw new ComputeSettingException("DType", $"Unknown dtype '{name}'. Accepted: {AcceptedNames}.");
    }

    /// <summary>Parses <paramref name="name"/> without throwing.</summary>
    /// <param name="name">The dtype name.</param>
    /// <param name="dtype">The scalar type when the name is valid.</param>
    /// <returns>Whether the name is valid.</returns>
    public static bool TryParse(string? name, [NotNullWhen(true)] out ScalarType dtype)
    {
        dtype = ScalarType.Float32;
        if (string.IsNullOrWhiteSpace(name)) return false;
        string text = name.Trim().ToLowerInvariant();
        if (text.StartsWith(TorchPrefix, StringComparison.Ordinal)) text = text[TorchPrefix.Length..];
        switch (text)
        {
            case "float32" or "fp32" or "f32" or "float":
                dtype = ScalarType.Float32;
                return true;
            case "bfloat16" or "bf16":
                dtype = ScalarType.BFloat16;
                return true;
            case "float16" or "fp16" or "f16" or "half":
                dtype = ScalarType.Float16;
                return true;
            default:
                return false;
        }
    }

    /// <summary>The canonical name of a supported dtype (<c>float32</c>, <c>bfloat16</c>, <c>float16</c>).</summary>
    /// <param name="dtype">The scalar type.</param>
    /// <returns>The canonical name.</returns>
    /// <exception cref="ComputeSettingException">The dtype is not a supported parameter dtype.</exception>
    public static string Format(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => Float32,
        ScalarType.BFloat16 => BFloat16,
        ScalarType.Float16 => Float16,
        _ => throw new ComputeSettingException("DType", $"Dtype {dtype} is not a supported parameter dtype. Accepted: {AcceptedNames}."),
    };
}
