using System.Text;
using Microsoft.Extensions.Logging;

namespace Bagel.Data.Tokenization;

/// <summary>How <see cref="ByteLevelBpeTrainer"/> builds a vocabulary.</summary>
public sealed record ByteLevelBpeTrainingOptions
{
    /// <summary>The fewest BPE tokens a vocabulary can have: one per byte value.</summary>
    public const int ByteCount = 256;

    /// <summary>
    /// The most BPE tokens (the 256 byte tokens plus one per merge; added tokens not counted). <see cref="ByteCount"/>
    /// gives a bytes-only tokenizer with no merges. Default 1024.
    /// </summary>
    public int MaxVocabularySize { get; init; } = 1024;

    /// <summary>A pair of tokens is merged only when it occurs at least this often in the corpus. Default 2.</summary>
    public int MinPairFrequency { get; init; } = 2;

    /// <summary>Checks the values; every problem is named in one message.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        var problems = new List<string>();
        if (MaxVocabularySize < ByteCount) problems.Add($"{nameof(MaxVocabularySize)} is {MaxVocabularySize}; it must be at least {ByteCount} (one token per byte).");
        if (MinPairFrequency < 1) problems.Add($"{nameof(MinPairFrequency)} is {MinPairFrequency}; it must be at least 1.");
        if (problems.Count > 0) throw new ArgumentException(string.Join(" ", problems));
    }
}

/// <summary>
/// Builds a small byte-level BPE tokenizer in the Qwen2 format from example text, so that a model can train without
/// the Qwen2.5 tokenizer files. The result is an ordinary <see cref="Qwen2Tokenizer"/>: the same NFC normalisation,
/// pre-tokenizer split and byte-level alphabet, so any text (also text the corpus never held) encodes and decodes
/// losslessly, falling back to single bytes. Pass it to <see cref="BagelSpecialTokens.Apply"/> to add BAGEL's four
/// tokens, and keep it beside the checkpoints with <see cref="Qwen2Tokenizer.Save"/>.
/// </summary>
/// <remarks>
/// Training is the classic greedy procedure: start from the 256 byte tokens, repeatedly merge the most frequent
/// adjacent pair inside pre-tokenized pieces (ties go to the ordinally smallest pair, so the result depends only on
/// the corpus and the options), until <see cref="ByteLevelBpeTrainingOptions.MaxVocabularySize"/> is reached or no
/// pair occurs <see cref="ByteLevelBpeTrainingOptions.MinPairFrequency"/> times. Each merge recounts every distinct
/// piece, so it suits corpora of up to some tens of thousands of distinct words (captions of an example set, a test
/// fixture), not a web-scale corpus.
/// </remarks>
public static partial class ByteLevelBpeTrainer
{
    /// <summary>The bytes-only tokenizer: 256 byte tokens and no merges (every UTF-8 byte is one token).</summary>
    public static Qwen2Tokenizer BytesOnly() => Train([], new ByteLevelBpeTrainingOptions { MaxVocabularySize = ByteLevelBpeTrainingOptions.ByteCount });

    /// <summary>Trains a tokenizer on <paramref name="texts"/>.</summary>
    /// <param name="texts">The corpus; each text is normalised and split as Qwen2 does before counting.</param>
    /// <param name="options">Vocabulary size and pair threshold (default: <see cref="ByteLevelBpeTrainingOptions"/>'s defaults).</param>
    /// <param name="logger">Receives one summary line; optional.</param>
    /// <param name="cancellationToken">Stops training between merges.</param>
    /// <returns>A tokenizer with no added tokens (<see cref="Qwen2Tokenizer.Source"/> describes how it was made).</returns>
    /// <exception cref="ArgumentException">A text holds a lone UTF-16 surrogate, or an option is out of range.</exception>
    public static Qwen2Tokenizer Train(IEnumerable<string> texts, ByteLevelBpeTrainingOptions? options = null, ILogger? logger = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        options ??= new ByteLevelBpeTrainingOptions();
        options.Validate();

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int b = 0; b < ByteLevelBpeTrainingOptions.ByteCount; b++) vocabulary.Add(ByteLevelAlphabet.ToChar((byte)b).ToString(), b);

        List<Piece> pieces = CountPieces(texts, cancellationToken);
        var merges = new List<string>();
        var mergeSet = new HashSet<string>(StringComparer.Ordinal);
        while (vocabulary.Count < options.MaxVocabularySize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (BestPair(pieces, options.MinPairFrequency) is not var (left, right)) break;
            string joined = left + right;
            if (!mergeSet.Add(string.Concat(left, " ", right))) break; // cannot happen: a merged pair no longer occurs
            merges.Add(string.Concat(left, " ", right));
            vocabulary.TryAdd(joined, vocabulary.Count);
            foreach (Piece piece in pieces) piece.Merge(left, right, joined);
        }

        string source = $"byte-level BPE trained in memory on {pieces.Sum(p => (long)p.Count)} pieces ({pieces.Count} distinct), {merges.Count} merges";
        var data = new BpeModelData { Vocabulary = vocabulary, Merges = merges, AddedTokens = [], Source = source };
        Qwen2Tokenizer tokenizer = Qwen2Tokenizer.FromModelData(data, logger: null);
        if (logger is not null) LogTrained(logger, tokenizer.VocabularySize, merges.Count, pieces.Count);
        return tokenizer;
    }

    /// <summary>The distinct pre-tokenized pieces of the corpus as byte-level symbols, with their counts, in first-seen order.</summary>
    private static List<Piece> CountPieces(IEnumerable<string> texts, CancellationToken cancellationToken)
    {
        var byText = new Dictionary<string, Piece>(StringComparer.Ordinal);
        var ordered = new List<Piece>();
        var bytes = new List<byte>();
        foreach (string text in texts)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ArgumentNullException.ThrowIfNull(text, nameof(texts));
            Qwen2Normalization.ThrowIfInvalidUtf16(text, nameof(texts));
            string normal = Qwen2Normalization.ToNfc(text).ToString();
            foreach ((int offset, int length) in Qwen2PreTokenizer.Split(normal))
            {
                string piece = normal.Substring(offset, length);
                if (!byText.TryGetValue(piece, out Piece? entry))
                {
                    byte[] utf8 = Encoding.UTF8.GetBytes(piece);
                    entry = new Piece([.. utf8.Select(b => ByteLevelAlphabet.ToChar(b).ToString())]);
                    byText.Add(piece, entry);
                    ordered.Add(entry);
                }
                entry.Count++;
            }
        }
        return ordered;
    }

    /// <summary>The most frequent adjacent pair (ordinal order breaks ties), or null when none reaches <paramref name="minFrequency"/>.</summary>
    private static (string Left, string Right)? BestPair(List<Piece> pieces, int minFrequency)
    {
        var counts = new Dictionary<(string, string), long>();
        foreach (Piece piece in pieces)
        {
            for (int i = 0; i + 1 < piece.Symbols.Count; i++)
            {
                var pair = (piece.Symbols[i], piece.Symbols[i + 1]);
                counts[pair] = counts.GetValueOrDefault(pair) + piece.Count;
            }
        }
        (string, string)? best = null;
        long bestCount = 0;
        foreach (var ((left, right), count) in counts)
        {
            if (count < minFrequency) continue;
            if (best is not var (bl, br) || count > bestCount
                || (count == bestCount && (string.CompareOrdinal(left, bl) < 0 || (left == bl && string.CompareOrdinal(right, br) < 0))))
            {
                best = (left, right);
                bestCount = count;
            }
        }
        return best;
    }

    private sealed class Piece(List<string> symbols)
    {
        public List<string> Symbols { get; } = symbols;

        public int Count { get; set; }

        /// <summary>Replaces each non-overlapping occurrence of (left, right), from the left, with <paramref name="joined"/>.</summary>
        public void Merge(string left, string right, string joined)
        {
            for (int i = 0; i + 1 < Symbols.Count; i++)
            {
                if (Symbols[i] == left && Symbols[i + 1] == right)
                {
                    Symbols[i] = joined;
                    Symbols.RemoveAt(i + 1);
                }
            }
        }
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Information,
        Message = "Trained a byte-level BPE tokenizer: {VocabularySize} BPE tokens ({MergeCount} merges) from {Pieces} distinct pieces")]
    private static partial void LogTrained(ILogger logger, int vocabularySize, int mergeCount, int pieces);
}
