namespace Bagel.Data.Tokenization;

/// <summary>
/// What a tokenizer folder holds once read and checked: the BPE vocabulary, the merges in rank order
/// ("left right", the form Microsoft.ML.Tokenizers reads) and the added tokens.
/// </summary>
internal sealed class BpeModelData
{
    public required Dictionary<string, int> Vocabulary { get; init; }

    public required List<string> Merges { get; init; }

    public required List<AddedToken> AddedTokens { get; init; }

    /// <summary>The files it came from, for log lines.</summary>
    public required string Source { get; init; }
}

/// <summary>The checks shared by the readers; each names the file and the line or key at fault.</summary>
internal static class BpeModelChecks
{
    /// <summary>Adds one vocabulary entry after checking its id and its characters.</summary>
    public static void AddVocabularyEntry(
        Dictionary<string, int> vocabulary, Dictionary<int, string> tokensById, string token, int id, string file, string location)
    {
        if (id < 0)
            throw new TokenizerFormatException(file, location, $"id {id} is negative; token ids start at 0.");
        if (vocabulary.ContainsKey(token))
            throw new TokenizerFormatException(file, location, $"token \"{token}\" appears twice; each token must be listed once.");
        if (tokensById.TryGetValue(id, out string? other))
            throw new TokenizerFormatException(file, location, $"id {id} is used by both \"{other}\" and \"{token}\"; each id must be used once.");
        foreach (char c in token)
        {
            if (!ByteLevelAlphabet.TryToByte(c, out _))
                throw new TokenizerFormatException(file, location,
                    $"token \"{token}\" holds U+{(int)c:X4}, which is not in the byte-level alphabet; this is not a byte-level BPE vocabulary.");
        }
        vocabulary.Add(token, id);
        tokensById.Add(id, token);
    }

    /// <summary>Adds one merge after checking that both parts and their concatenation are vocabulary tokens.</summary>
    public static void AddMerge(
        List<string> merges, Dictionary<string, string> seen, Dictionary<string, int> vocabulary,
        string left, string right, string file, string location)
    {
        foreach (string part in (ReadOnlySpan<string>)[left, right, left + right])
        {
            if (!vocabulary.ContainsKey(part))
                throw new TokenizerFormatException(file, location,
                    $"merge \"{left} {right}\" needs \"{part}\", which is not in the vocabulary; the merges do not belong to this vocabulary.");
        }
        string merge = left + " " + right;
        if (seen.TryGetValue(merge, out string? firstLocation))
            throw new TokenizerFormatException(file, location, $"merge \"{merge}\" repeats {firstLocation}; remove one of them.");
        seen.Add(merge, location);
        merges.Add(merge);
    }

    /// <summary>Checks an added token against the vocabulary and the added tokens read before it, then adds it.</summary>
    public static void AddAddedToken(
        List<AddedToken> added, Dictionary<string, int> vocabulary, Dictionary<int, string> tokensById,
        AddedToken token, string file, string location)
    {
        if (token.Id < 0)
            throw new TokenizerFormatException(file, location, $"id {token.Id} is negative; token ids start at 0.");
        if (token.Content.Length == 0)
            throw new TokenizerFormatException(file, location, "the added token's content is empty.");
        if (tokensById.TryGetValue(token.Id, out string? holder) && holder != token.Content)
            throw new TokenizerFormatException(file, location,
                $"id {token.Id} is used by both \"{holder}\" and the added token \"{token.Content}\"; each id must be used once.");
        if (vocabulary.TryGetValue(token.Content, out int vocabId) && vocabId != token.Id)
            throw new TokenizerFormatException(file, location,
                $"added token \"{token.Content}\" has id {token.Id} but the vocabulary gives it id {vocabId}; use one id.");
        foreach (AddedToken earlier in added)
        {
            if (earlier.Id == token.Id || earlier.Content == token.Content)
                throw new TokenizerFormatException(file, location,
                    $"added token \"{token.Content}\" (id {token.Id}) repeats \"{earlier.Content}\" (id {earlier.Id}); list each added token once.");
        }
        added.Add(token);
    }
}
