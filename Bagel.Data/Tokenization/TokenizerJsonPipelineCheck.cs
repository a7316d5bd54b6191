using System.Text.Json;

namespace Bagel.Data.Tokenization;

/// <summary>
/// Makes sure a tokenizer.json describes Qwen2's text pipeline before BPE, which <see cref="Qwen2Tokenizer"/> always
/// applies: an NFC normaliser (or none) and, where the pre-tokenizer has a regex split, Qwen2's pattern. Another
/// model's tokenizer.json (a different split regex, lower-casing) would otherwise load and give wrong ids silently.
/// </summary>
internal static class TokenizerJsonPipelineCheck
{
    /// <summary>The one normaliser Qwen2 uses (tokenizer.json <c>normalizer.type</c>).</summary>
    private const string NfcNormalizerType = "NFC";

    public static void Check(JsonElement root, string path)
    {
        if (root.TryGetProperty("normalizer", out JsonElement normalizer) && normalizer.ValueKind == JsonValueKind.Object
            && normalizer.TryGetProperty("type", out JsonElement type) && type.GetString() != NfcNormalizerType)
        {
            throw new TokenizerFormatException(path, "normalizer.type",
                $"the normaliser is \"{type.GetString()}\"; Qwen2Tokenizer applies only NFC, so this file is not a Qwen2 tokenizer.");
        }
        if (root.TryGetProperty("pre_tokenizer", out JsonElement preTokenizer))
            CheckSplitPatterns(preTokenizer, path, "pre_tokenizer");
    }

    /// <summary>Walks the pre-tokenizer (a Sequence nests others) and checks every <c>pattern.Regex</c> it holds.</summary>
    private static void CheckSplitPatterns(JsonElement element, string path, string key)
    {
        if (element.ValueKind == JsonValueKind.Array)
        {
            int index = 0;
            foreach (JsonElement item in element.EnumerateArray()) CheckSplitPatterns(item, path, $"{key}[{index++}]");
            return;
        }
        if (element.ValueKind != JsonValueKind.Object) return;
        if (element.TryGetProperty("pattern", out JsonElement pattern) && pattern.ValueKind == JsonValueKind.Object
            && pattern.TryGetProperty("Regex", out JsonElement regex) && regex.GetString() != Qwen2PreTokenizer.SplitPattern)
        {
            throw new TokenizerFormatException(path, $"{key}.pattern.Regex",
                $"the split pattern is not Qwen2's; Qwen2Tokenizer applies only {Qwen2PreTokenizer.SplitPattern}");
        }
        foreach (JsonProperty property in element.EnumerateObject())
        {
            if (property.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
                CheckSplitPatterns(property.Value, path, $"{key}.{property.Name}");
        }
    }
}
