using System.Text.RegularExpressions;

namespace Bagel.Data.Tokenization;

/// <summary>
/// Finds added-token text in the input before BPE, like Hugging Face's added-vocabulary split: the leftmost match
/// wins, and among matches at the same place the longest. The regex alternation lists longer tokens first, which
/// gives exactly that order. Immutable and thread-safe.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idsByContent;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (AddedToken token in tokens) ids[token.Content] = token.Id;
        _idsByContent = ids.GetAlternateLookup<ReadOnlySpan<char>>();
        if (ids.Count == 0) return;
        IEnumerable<string> longestFirst = ids.Keys
            .OrderByDescending(content => content.Length)
            .ThenBy(content => content, StringComparer.Ordinal)
            .Select(Regex.Escape);
        Pattern = new Regex(string.Join('|', longestFirst), RegexOptions.Compiled | RegexOptions.CultureInvariant);
    }

    /// <summary>The regex that matches any added token; null when there are none.</summary>
    public Regex? Pattern { get; }

    /// <summary>The id of the added token whose text is <paramref name="content"/> (a match of <see cref="Pattern"/>).</summary>
    public int GetId(ReadOnlySpan<char> content) => _idsByContent[content];
}
