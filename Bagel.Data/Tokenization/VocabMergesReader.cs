using System.Text;
using System.Text.Json;

namespace Bagel.Data.Tokenization;

/// <summary>
/// Reads the "slow tokenizer" layout: <c>vocab.json</c> (token to id), <c>merges.txt</c> (one merge per line, in
/// rank order) and, when present, <c>tokenizer_config.json</c>'s <c>added_tokens_decoder</c> (id to added token).
/// </summary>
internal static class VocabMergesReader
{
    /// <summary>
    /// The one header merges.txt may have, on its first line only ("#version: 0.2"). Every other line that starts
    /// with '#' is a real merge: Qwen2 has "# #", "## ##" and "# include".
    /// </summary>
    private const string VersionHeaderPrefix = "#version";

    public static BpeModelData Read(string vocabPath, string mergesPath, string? tokenizerConfigPath, CancellationToken cancellationToken)
    {
        Dictionary<string, int> vocabulary;
        Dictionary<int, string> tokensById;
        using (JsonDocument vocabJson = TokenizerJsonParsing.ParseFile(vocabPath, cancellationToken))
            (vocabulary, tokensById) = TokenizerJsonParsing.ReadVocabulary(vocabJson.RootElement, vocabPath, "", cancellationToken);

        List<string> merges = ReadMerges(mergesPath, vocabulary, cancellationToken);

        var added = new List<AddedToken>();
        if (tokenizerConfigPath is not null)
            ReadAddedTokensDecoder(tokenizerConfigPath, vocabulary, tokensById, added, cancellationToken);

        string source = tokenizerConfigPath is null ? $"{vocabPath} + {mergesPath}" : $"{vocabPath} + {mergesPath} + {tokenizerConfigPath}";
        return new BpeModelData { Vocabulary = vocabulary, Merges = merges, AddedTokens = added, Source = source };
    }

    private static List<string> ReadMerges(string mergesPath, Dictionary<string, int> vocabulary, CancellationToken cancellationToken)
    {
        string text = Encoding.UTF8.GetString(TokenizerJsonParsing.ReadAllBytes(mergesPath));
        var merges = new List<string>(vocabulary.Count);
        var firstLines = new Dictionary<string, int>(vocabulary.Count, StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (ReadOnlySpan<char> rawLine in text.AsSpan().EnumerateLines())
        {
            lineNumber++;
            if ((lineNumber & 0xFFFF) == 0) cancellationToken.ThrowIfCancellationRequested();
            ReadOnlySpan<char> line = rawLine.Trim();
            // Blank lines (the file's final newline among them) are skipped, as Qwen2's own loader does.
            if (line.IsEmpty) continue;
            if (lineNumber == 1 && line.StartsWith(VersionHeaderPrefix, StringComparison.Ordinal)) continue;
            int space = line.IndexOf(' ');
            if (space <= 0 || space == line.Length - 1 || line[(space + 1)..].Contains(' '))
                throw new TokenizerFormatException(mergesPath, DescribeLine(lineNumber),
                    $"\"{line}\" is not a merge; each line must be two tokens separated by one space.");
            string? problem = BpeModelChecks.TryAddMerge(
                merges, firstLines, vocabulary, line[..space].ToString(), line[(space + 1)..].ToString(), lineNumber, DescribeLine);
            if (problem is not null) throw new TokenizerFormatException(mergesPath, DescribeLine(lineNumber), problem);
        }
        return merges;
    }

    private static string DescribeLine(int lineNumber) => $"line {lineNumber}";

    private static void ReadAddedTokensDecoder(
        string configPath, Dictionary<string, int> vocabulary, Dictionary<int, string> tokensById, List<AddedToken> added,
        CancellationToken cancellationToken)
    {
        using JsonDocument config = TokenizerJsonParsing.ParseFile(configPath, cancellationToken);
        JsonElement root = TokenizerJsonParsing.Expect(config.RootElement, JsonValueKind.Object, configPath, "the top level");
        const string key = "added_tokens_decoder";
        if (!root.TryGetProperty(key, out JsonElement decoder) || decoder.ValueKind == JsonValueKind.Null) return;
        TokenizerJsonParsing.Expect(decoder, JsonValueKind.Object, configPath, key);
        foreach (JsonProperty entry in decoder.EnumerateObject())
        {
            string location = $"{key}.\"{entry.Name}\"";
            int id = TokenizerJsonParsing.ParseIdKey(entry.Name, configPath, location);
            AddedToken token = TokenizerJsonParsing.ReadAddedToken(entry.Value, id, configPath, location);
            if (BpeModelChecks.TryAddAddedToken(added, vocabulary, tokensById, token) is string problem)
                throw new TokenizerFormatException(configPath, location, problem);
        }
    }
}
