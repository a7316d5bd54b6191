using System.Text.Json;

namespace Bagel.Data.Tokenization;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c>: <c>model.vocab</c>, <c>model.merges</c> (either "left right" strings
/// or ["left", "right"] pairs, as newer versions of the tokenizers library write) and <c>added_tokens</c>.
/// The normaliser and pre-tokenizer sections are only checked to be Qwen2's (<see cref="TokenizerJsonPipelineCheck"/>):
/// <see cref="Qwen2Tokenizer"/> always applies Qwen2's.
/// </summary>
internal static class TokenizerJsonReader
{
    /// <summary>The only model type a byte-level BPE tokenizer can load.</summary>
    private const string BpeModelType = "BPE";

    public static BpeModelData Read(string path, CancellationToken cancellationToken)
    {
        using JsonDocument document = TokenizerJsonParsing.ParseFile(path, cancellationToken);
        JsonElement root = TokenizerJsonParsing.Expect(document.RootElement, JsonValueKind.Object, path, "the top level");
        JsonElement model = TokenizerJsonParsing.Expect(TokenizerJsonParsing.Required(root, "model", path, ""), JsonValueKind.Object, path, "model");
        if (model.TryGetProperty("type", out JsonElement type) && type.ValueKind == JsonValueKind.String && type.GetString() != BpeModelType)
            throw new TokenizerFormatException(path, "model.type", $"the model is \"{type.GetString()}\", not \"{BpeModelType}\"; Qwen2Tokenizer loads only byte-level BPE.");
        TokenizerJsonPipelineCheck.Check(root, path);

        var (vocabulary, tokensById) = TokenizerJsonParsing.ReadVocabulary(
            TokenizerJsonParsing.Required(model, "vocab", path, "model"), path, "model.vocab", cancellationToken);
        List<string> merges = ReadMerges(TokenizerJsonParsing.Required(model, "merges", path, "model"), path, vocabulary, cancellationToken);

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out JsonElement addedTokens) && addedTokens.ValueKind != JsonValueKind.Null)
        {
            TokenizerJsonParsing.Expect(addedTokens, JsonValueKind.Array, path, "added_tokens");
            int index = 0;
            foreach (JsonElement entry in addedTokens.EnumerateArray())
            {
                string location = $"added_tokens[{index++}]";
                int id = TokenizerJsonParsing.ReadId(TokenizerJsonParsing.Required(entry, "id", path, location), path, $"{location}.id");
                AddedToken token = TokenizerJsonParsing.ReadAddedToken(entry, id, path, location);
                if (BpeModelChecks.TryAddAddedToken(added, vocabulary, tokensById, token) is string problem)
                    throw new TokenizerFormatException(path, location, problem);
            }
        }
        return new BpeModelData { Vocabulary = vocabulary, Merges = merges, AddedTokens = added, Source = path };
    }

    private static List<string> ReadMerges(JsonElement mergesElement, string path, Dictionary<string, int> vocabulary, CancellationToken cancellationToken)
    {
        TokenizerJsonParsing.Expect(mergesElement, JsonValueKind.Array, path, "model.merges");
        var merges = new List<string>(mergesElement.GetArrayLength());
        var firstIndexes = new Dictionary<string, int>(merges.Capacity, StringComparer.Ordinal);
        int index = 0;
        foreach (JsonElement merge in mergesElement.EnumerateArray())
        {
            if ((index & 0xFFFF) == 0) cancellationToken.ThrowIfCancellationRequested();
            var (left, right) = merge.ValueKind switch
            {
                JsonValueKind.String => SplitMergeString(merge.GetString()!, path, index),
                JsonValueKind.Array => ReadMergePair(merge, path, index),
                _ => throw new TokenizerFormatException(path, DescribeMerge(index), $"expected \"left right\" or [\"left\", \"right\"], found {merge.GetRawText()}."),
            };
            if (BpeModelChecks.TryAddMerge(merges, firstIndexes, vocabulary, left, right, index, DescribeMerge) is string problem)
                throw new TokenizerFormatException(path, DescribeMerge(index), problem);
            index++;
        }
        return merges;
    }

    private static string DescribeMerge(int index) => $"model.merges[{index}]";

    private static (string Left, string Right) SplitMergeString(string merge, string path, int index)
    {
        string[] parts = merge.Split(' ');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
            throw new TokenizerFormatException(path, DescribeMerge(index), $"\"{merge}\" is not a merge; it must be two tokens separated by one space.");
        return (parts[0], parts[1]);
    }

    private static (string Left, string Right) ReadMergePair(JsonElement pair, string path, int index)
    {
        if (pair.GetArrayLength() != 2)
            throw new TokenizerFormatException(path, DescribeMerge(index), $"a merge pair must hold exactly two tokens, found {pair.GetRawText()}.");
        if (pair[0].ValueKind != JsonValueKind.String || pair[1].ValueKind != JsonValueKind.String)
            throw new TokenizerFormatException(path, DescribeMerge(index), $"a merge pair must hold two strings, found {pair.GetRawText()}.");
        string left = pair[0].GetString()!;
        string right = pair[1].GetString()!;
        // Byte-level tokens never hold a raw space (it is written 'Ġ'), and the merge list handed to the BPE engine
        // uses a space as the separator; a pair holding one cannot belong to this vocabulary.
        if (left.Length == 0 || right.Length == 0 || left.Contains(' ') || right.Contains(' '))
            throw new TokenizerFormatException(path, DescribeMerge(index), $"merge pair {pair.GetRawText()} holds an empty token or a raw space, which byte-level BPE never produces.");
        return (left, right);
    }
}
