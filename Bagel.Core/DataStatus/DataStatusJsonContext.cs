using System.Text.Json.Serialization;

namespace Bagel.Core.DataStatus;

/// <summary>
/// Source-generated System.Text.Json metadata for the data status: snake_case names, enums as strings, unknown
/// members rejected, required members enforced, nullable annotations respected, null members omitted.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UseStringEnumConverter = true,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(DataStatusDocument))]
internal sealed partial class DataStatusJsonContext : JsonSerializerContext;
