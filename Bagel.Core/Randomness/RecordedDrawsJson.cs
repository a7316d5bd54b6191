using System.Globalization;
using System.Text.Json;
using static TorchSharp.torch;

namespace Bagel.Core.Randomness;

/// <summary>
/// Reads recorded draws from the JSON a reference-recording script writes, for <see cref="ReplayRandomSource"/>:
/// an array of <c>{"kind": "uniform" | "integer" | "normal" | "tensor", "value": number}</c>, where a tensor entry
/// has <c>"tensor": i</c> (an index into tensors the caller loaded separately, e.g. from safetensors) instead of a value.
/// </summary>
public static class RecordedDrawsJson
{
    /// <summary>Parses the draws in <paramref name="json"/>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="tensors">The tensors that <c>tensor</c> entries refer to (borrowed); may be null when there are none.</param>
    /// <param name="source">A name for messages (the fixture's path).</param>
    /// <returns>The draws, in order.</returns>
    /// <exception cref="FormatException">An entry is malformed; the message names the source and the entry index.</exception>
    public static IReadOnlyList<RecordedDraw> Parse(string json, IReadOnlyList<Tensor>? tensors = null, string source = "<string>")
    {
        ArgumentNullException.ThrowIfNull(json);
        using JsonDocument document = JsonDocument.Parse(json);
        if (document.RootElement.ValueKind != JsonValueKind.Array)
            throw new FormatException($"Recorded draws '{source}': the root is an array of draws.");
        var draws = new List<RecordedDraw>();
        int index = 0;
        foreach (JsonElement entry in document.RootElement.EnumerateArray())
        {
            draws.Add(ParseEntry(entry, tensors, $"Recorded draws '{source}', entry {index.ToString(CultureInfo.InvariantCulture)}"));
            index++;
        }
        return draws;
    }

    private static RecordedDraw ParseEntry(JsonElement entry, IReadOnlyList<Tensor>? tensors, string where)
    {
        if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("kind", out JsonElement kindElement) || kindElement.ValueKind != JsonValueKind.String)
            throw new FormatException($"{where}: expected an object with a string 'kind'.");
        string kind = kindElement.GetString()!;
        try
        {
            return kind switch
            {
                "uniform" => RecordedDraw.Uniform(entry.GetProperty("value").GetDouble()),
                "integer" => RecordedDraw.Integer(entry.GetProperty("value").GetInt64()),
                "normal" => RecordedDraw.StandardNormal(entry.GetProperty("value").GetDouble()),
                "tensor" => RecordedDraw.FromTensor(TensorAt(entry.GetProperty("tensor").GetInt32(), tensors, where)),
                _ => throw new FormatException($"{where}: unknown kind '{kind}'; expected uniform, integer, normal or tensor."),
            };
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or ArgumentOutOfRangeException)
        {
            throw new FormatException($"{where} ({kind}): {ex.Message}", ex);
        }
    }

    private static Tensor TensorAt(int index, IReadOnlyList<Tensor>? tensors, string where)
    {
        int count = tensors?.Count ?? 0;
        if (index < 0 || index >= count)
            throw new FormatException($"{where}: tensor index {index} is outside the {count} tensor(s) provided.");
        return tensors![index];
    }
}
