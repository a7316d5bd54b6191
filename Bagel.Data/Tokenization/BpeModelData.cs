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

/// <summary>
/// The checks shared by the readers. Each returns null when the entry is fine and was added, or the problem;
/// the caller, which knows the file and the line or key, throws. (Locations are built only on failure: a
/// tokenizer has 150k entries.)
/// </summary>
internal static class BpeModelChecks
{
    /// <summary>Adds one vocabulary entry after checking its id and its characters.</summary>
    public static string? TryAddVocabularyEntry(Dictionary<string, int> vocabulary, Dictionary<int, string> tokensById, string token, int id)
    {
        if (id < 0) return $"id {id} is negative; token ids start at 0.";
        foreach (char c in token)
        {
            if (!ByteLevelAlphabet.TryToByte(c, out _))
                return $"token \"{token}\" holds U+{(int)c:X4}, which is not in the byte-level alphabet; this is not a byte-level BPE vocabulary.";
        }
        if (!vocabulary.TryAdd(token, id)) return $"token \"{token}\" appears twice; each token must be listed once.";
        if (!tokensById.TryAdd(id, token))
        {
            vocabulary.Remove(token);
            return $"id {id} is used by both \"{tokensById[id]}\" and \"{token}\"; each id must be used once.";
        }
        return null;
    }

    /// <summary>
    /// Adds one merge after checking that both parts and their concatenation are vocabulary tokens and that it is
    /// new; <paramref name="firstIndexes"/> remembers the index of each merge for the duplicate message.
    /// </summary>
    public static string? TryAddMerge(
        List<string> merges, Dictionary<string, int> firstIndexes, Dictionary<string, int> vocabulary,
        string left, string right, int index, Func<int, string> describeIndex)
    {
        if (!vocabulary.ContainsKey(left)) return MissingPart(left, right, left);
        if (!vocabulary.ContainsKey(right)) return MissingPart(left, right, right);
        int joinedLength = left.Length + right.Length;
        Span<char> joined = joinedLength <= 256 ? stackalloc char[joinedLength] : new char[joinedLength];
        left.CopyTo(joined);
        right.CopyTo(joined[left.Length..]);
        if (!vocabulary.GetAlternateLookup<ReadOnlySpan<char>>().ContainsKey(joined))
            return MissingPart(left, right, left + right);
        string merge = string.Concat(left, " ", right);
        if (!firstIndexes.TryAdd(merge, index))
            return $"merge \"{merge}\" repeats {describeIndex(firstIndexes[merge])}; remove one of them.";
        merges.Add(merge);
        return null;
    }

    /// <summary>Checks an added token against the vocabulary and the added tokens read before it, then adds it.</summary>
    public static string? TryAddAddedToken(List<AddedToken> added, Dictionary<string, int> vocabulary, Dictionary<int, string> tokensById, AddedToken token)
    {
        if (token.Id < 0) return $"id {token.Id} is negative; token ids start at 0.";
        if (token.Content.Length == 0) return "the added token's content is empty.";
        if (tokensById.TryGetValue(token.Id, out string? holder) && holder != token.Content)
            return $"id {token.Id} is used by both \"{holder}\" and the added token \"{token.Content}\"; each id must be used once.";
        if (vocabulary.TryGetValue(token.Content, out int vocabId) && vocabId != token.Id)
            return $"added token \"{token.Content}\" has id {token.Id} but the vocabulary gives it id {vocabId}; use one id.";
        foreach (AddedToken earlier in added)
        {
            if (earlier.Id == token.Id || earlier.Content == token.Content)
                return $"added token \"{token.Content}\" (id {token.Id}) repeats \"{earlier.Content}\" (id {earlier.Id}); list each added token once.";
        }
        added.Add(token);
        return null;
    }

    private static string MissingPart(string left, string right, string part) =>
        $"merge \"{left} {right}\" needs \"{part}\", which is not in the vocabulary; the merges do not belong to this vocabulary.";
}
