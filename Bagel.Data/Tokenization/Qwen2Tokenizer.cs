using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Bagel.Data.Tokenization;

/// <summary>
/// The Qwen2 / Qwen2.5 byte-level BPE tokenizer, producing the same ids as Hugging Face's <c>Qwen2TokenizerFast</c>
/// with its defaults: no BOS/EOS is added, and added-token text in the input (such as <c>&lt;|im_end|&gt;</c>) is
/// matched as that token (<c>split_special_tokens=false</c>). Ordinary text is NFC-normalised, split as Qwen2's
/// pre-tokenizer pattern splits it (over code points, like Hugging Face's regex engine), mapped to UTF-8 bytes and
/// merged by rank (Microsoft.ML.Tokenizers' BPE engine).
/// </summary>
/// <remarks>
/// Load one with <see cref="FromFolder"/>. An instance is immutable and thread-safe: data-loader workers share one.
/// NFC normalisation needs ICU; under <c>InvariantGlobalization</c> it is skipped (see <see cref="IsNormalizationAvailable"/>).
/// </remarks>
public sealed partial class Qwen2Tokenizer : ITextTokenizer
{
    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _vocabulary;
    private readonly List<string> _merges;
    private readonly AddedTokenMatcher _addedMatcher;
    private readonly Dictionary<string, AddedToken> _addedByContent;
    private readonly string?[] _tokensById;
    private readonly AddedToken?[] _addedById;

    private Qwen2Tokenizer(BpeTokenizer bpe, Dictionary<string, int> vocabulary, List<string> merges, IReadOnlyList<AddedToken> addedTokens, string source)
    {
        _bpe = bpe;
        _vocabulary = vocabulary;
        _merges = merges;
        AddedTokens = addedTokens;
        Source = source;
        _addedMatcher = new AddedTokenMatcher(addedTokens);
        _addedByContent = addedTokens.ToDictionary(token => token.Content, StringComparer.Ordinal);

        int maxId = Math.Max(vocabulary.Values.Max(), addedTokens.Count == 0 ? -1 : addedTokens.Max(token => token.Id));
        _tokensById = new string?[maxId + 1];
        _addedById = new AddedToken?[maxId + 1];
        foreach (var (token, id) in vocabulary) _tokensById[id] = token;
        int addedOutsideVocabulary = 0;
        foreach (AddedToken token in addedTokens)
        {
            if (_tokensById[token.Id] is null) addedOutsideVocabulary++;
            _tokensById[token.Id] = token.Content;
            _addedById[token.Id] = token;
        }
        Count = vocabulary.Count + addedOutsideVocabulary;
    }

    /// <summary>
    /// The number of distinct token ids, BPE vocabulary and added tokens together: Hugging Face's <c>len(tokenizer)</c>
    /// (151,665 for Qwen2.5). The model's embedding must have at least this many rows. (Were the ids to have gaps,
    /// which Qwen2's never do, the largest id + 1 would exceed it.)
    /// </summary>
    public int Count { get; }

    /// <summary>The number of BPE vocabulary entries, added tokens excluded (151,643 for Qwen2.5).</summary>
    public int VocabularySize => _vocabulary.Count;

    /// <summary>The number of BPE merges (151,387 for Qwen2.5; 0 for a bytes-only vocabulary).</summary>
    public int MergeCount => _merges.Count;

    /// <summary>The added tokens, in the order the files list them (22 for Qwen2.5: 14 special, 8 tool-call and fill-in-the-middle tokens that are not).</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The file or files this tokenizer was loaded from.</summary>
    public string Source { get; }

    /// <summary>
    /// True when this process can NFC-normalise text, as Qwen2's tokenizer does before BPE. It is false when the
    /// application runs with <c>InvariantGlobalization</c> (no ICU); text is then encoded as given, which differs from
    /// Hugging Face only for text that is not already in NFC form (for example decomposed accents).
    /// </summary>
    public static bool IsNormalizationAvailable => Qwen2Normalization.IsNfcAvailable;

    /// <summary>Encodes <paramref name="text"/> to token ids. No BOS or EOS is added.</summary>
    /// <param name="text">The text; added-token text inside it (such as <c>&lt;|im_start|&gt;</c>) becomes that token.</param>
    /// <returns>The ids; empty for empty text.</returns>
    /// <exception cref="ArgumentException"><paramref name="text"/> holds a lone UTF-16 surrogate.</exception>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        Encode(text, ids);
        return [.. ids];
    }

    /// <summary>Encodes <paramref name="text"/> and appends the ids to <paramref name="destination"/>.</summary>
    /// <param name="text">The text to encode.</param>
    /// <param name="destination">The list that receives the ids, after anything it already holds.</param>
    /// <exception cref="ArgumentException"><paramref name="text"/> holds a lone UTF-16 surrogate.</exception>
    public void Encode(string text, List<int> destination)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(destination);
        Qwen2Normalization.ThrowIfInvalidUtf16(text, nameof(text));
        Regex? addedPattern = _addedMatcher.Pattern;
        if (addedPattern is null)
        {
            EncodeOrdinaryText(text, destination);
            return;
        }
        int position = 0;
        foreach (ValueMatch match in addedPattern.EnumerateMatches(text))
        {
            EncodeOrdinaryText(text.AsSpan(position, match.Index - position), destination);
            destination.Add(_addedMatcher.GetId(text.AsSpan(match.Index, match.Length)));
            position = match.Index + match.Length;
        }
        EncodeOrdinaryText(text.AsSpan(position), destination);
    }

    /// <summary>The number of ids <see cref="Encode(string)"/> returns for <paramref name="text"/>, without building them.</summary>
    /// <param name="text">The text to measure.</param>
    /// <exception cref="ArgumentException"><paramref name="text"/> holds a lone UTF-16 surrogate.</exception>
    public int CountTokens(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Qwen2Normalization.ThrowIfInvalidUtf16(text, nameof(text));
        Regex? addedPattern = _addedMatcher.Pattern;
        if (addedPattern is null) return CountOrdinaryText(text);
        int count = 0, position = 0;
        foreach (ValueMatch match in addedPattern.EnumerateMatches(text))
        {
            count += CountOrdinaryText(text.AsSpan(position, match.Index - position)) + 1;
            position = match.Index + match.Length;
        }
        return count + CountOrdinaryText(text.AsSpan(position));
    }

    /// <summary>
    /// Decodes ids back to text the way Hugging Face's byte-level decoder does: every token becomes bytes (a BPE token
    /// through the byte-level alphabet; an added token the same way when all its characters are in that alphabet,
    /// otherwise as its own UTF-8), and the joined bytes are read as UTF-8, an incomplete or invalid sequence
    /// becoming U+FFFD (<c>errors="replace"</c>). For Qwen2's added tokens this gives their text unchanged.
    /// </summary>
    /// <param name="ids">The ids; each must be a token of this tokenizer.</param>
    /// <param name="skipSpecialTokens">Leave out special tokens (default false, as Hugging Face's default).</param>
    /// <exception cref="ArgumentOutOfRangeException">An id is not a token of this tokenizer.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        byte[] bytes = ArrayPool<byte>.Shared.Rent(Math.Max(64, ids.Length * 8));
        int length = 0;
        try
        {
            foreach (int id in ids)
            {
                string token = GetToken(id);
                if (skipSpecialTokens && _addedById[id] is { Special: true }) continue;
                // A UTF-8 character takes at most 3 bytes per UTF-16 unit.
                if (length + 3 * token.Length > bytes.Length) Grow(ref bytes, length + 3 * token.Length);
                length += AppendTokenBytes(token, bytes.AsSpan(length));
            }
            return Encoding.UTF8.GetString(bytes, 0, length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>Looks up the id of a token: a BPE vocabulary entry in byte-level form ("Ġworld") or an added token's text.</summary>
    /// <param name="token">The token text.</param>
    /// <param name="id">The id when found.</param>
    public bool TryGetId(string token, out int id)
    {
        if (_addedByContent.TryGetValue(token, out AddedToken? added))
        {
            id = added.Id;
            return true;
        }
        return _vocabulary.TryGetValue(token, out id);
    }

    /// <summary>The id of <paramref name="token"/> (see <see cref="TryGetId"/>).</summary>
    /// <param name="token">The token text.</param>
    /// <exception cref="KeyNotFoundException">The tokenizer has no such token.</exception>
    public int GetId(string token) => TryGetId(token, out int id)
        ? id
        : throw new KeyNotFoundException($"The tokenizer loaded from {Source} has no token \"{token}\".");

    /// <summary>The token text of <paramref name="id"/>: byte-level form for BPE tokens, plain text for added tokens.</summary>
    /// <param name="id">The token id.</param>
    /// <param name="token">The token when found.</param>
    public bool TryGetToken(int id, [NotNullWhen(true)] out string? token)
    {
        token = (uint)id < (uint)_tokensById.Length ? _tokensById[id] : null;
        return token is not null;
    }

    /// <summary>The token text of <paramref name="id"/> (see <see cref="TryGetToken"/>).</summary>
    /// <param name="id">The token id.</param>
    /// <exception cref="ArgumentOutOfRangeException">No token has this id.</exception>
    public string GetToken(int id) => TryGetToken(id, out string? token)
        ? token
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"No token has id {id}; the tokenizer loaded from {Source} has ids 0..{_tokensById.Length - 1}.");

    /// <summary>True when <paramref name="id"/> is an added token marked special.</summary>
    /// <param name="id">The token id.</param>
    public bool IsSpecial(int id) => (uint)id < (uint)_addedById.Length && _addedById[id] is { Special: true };

    /// <summary>
    /// Returns a tokenizer with each of <paramref name="tokens"/> that this one does not know added as a new special
    /// token, with ids from one past the largest id upward, in the order given (Hugging Face's <c>add_tokens</c>).
    /// This tokenizer is not changed. When nothing is added the same instance is returned.
    /// </summary>
    /// <param name="tokens">The token texts to make sure of.</param>
    /// <param name="addedCount">How many were new; resize the model's embeddings to <see cref="Count"/> when above 0.</param>
    public Qwen2Tokenizer WithSpecialTokens(IEnumerable<string> tokens, out int addedCount)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var added = new List<AddedToken>(AddedTokens);
        int nextId = _tokensById.Length;
        foreach (string token in tokens)
        {
            ArgumentException.ThrowIfNullOrEmpty(token, nameof(tokens));
            if (TryGetId(token, out _) || added.Exists(existing => existing.Content == token)) continue;
            added.Add(new AddedToken(nextId++, token, Special: true));
        }
        addedCount = added.Count - AddedTokens.Count;
        return addedCount == 0 ? this : new Qwen2Tokenizer(_bpe, _vocabulary, _merges, added, Source);
    }

    private void EncodeOrdinaryText(ReadOnlySpan<char> text, List<int> destination)
    {
        if (text.IsEmpty) return;
        destination.AddRange(_bpe.EncodeToIds(Qwen2Normalization.ToNfc(text), considerPreTokenization: true, considerNormalization: false));
    }

    private int CountOrdinaryText(ReadOnlySpan<char> text) =>
        text.IsEmpty ? 0 : _bpe.CountTokens(Qwen2Normalization.ToNfc(text), considerPreTokenization: true, considerNormalization: false);

    /// <summary>
    /// Writes the bytes <paramref name="token"/> stands for: through the byte-level alphabet when every character is
    /// in it (always so for vocabulary tokens, checked at load), otherwise its UTF-8.
    /// </summary>
    private static int AppendTokenBytes(string token, Span<byte> destination)
    {
        for (int i = 0; i < token.Length; i++)
        {
            if (!ByteLevelAlphabet.TryToByte(token[i], out destination[i]))
                return Encoding.UTF8.GetBytes(token, destination);
        }
        return token.Length;
    }

    private static void Grow(ref byte[] buffer, int needed)
    {
        byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, buffer.Length * 2));
        buffer.CopyTo(larger, 0);
        ArrayPool<byte>.Shared.Return(buffer);
        buffer = larger;
    }
}
