using System.Buffers;
using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Bagel.Data.Tokenization;

/// <summary>
/// Qwen2's pre-tokenizer split (<see cref="SplitPattern"/>: contractions, letters with one optional leading
/// non-letter, single digits, punctuation runs, newlines, spaces) as a hand-written scanner over
/// Unicode code points. A .NET <see cref="System.Text.RegularExpressions.Regex"/> would see the two UTF-16 halves of
/// a character above U+FFFF (a CJK Extension B ideograph, a mathematical letter or digit) as two non-letters, while
/// Hugging Face's regex engine sees one letter or digit; this scanner sees what Hugging Face sees. On text inside the
/// Basic Multilingual Plane it splits exactly as the regex does (a test checks that). Stateless and thread-safe.
/// </summary>
internal sealed class Qwen2PreTokenizer : PreTokenizer
{
    /// <summary>Qwen2's pre-tokenizer pattern (tokenizer.json <c>pre_tokenizer.pretokenizers[0].pattern.Regex</c>).</summary>
    public const string SplitPattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The shared instance.</summary>
    public static Qwen2PreTokenizer Instance { get; } = new();

    private static readonly CharClass[] AsciiClasses = BuildAsciiClasses();

    private enum CharClass : byte
    {
        Letter,   // \p{L}
        Number,   // \p{N}
        Newline,  // \r or \n
        Space,    // any other white space (Unicode White_Space, which is what \s means in both engines)
        Other,    // everything else: punctuation, symbols, emoji, controls
    }

    /// <inheritdoc />
    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) =>
        string.IsNullOrEmpty(text) ? [] : Split(text.AsSpan());

    /// <inheritdoc />
    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text);

    /// <summary>Splits <paramref name="text"/> into consecutive pieces (offset, length) that cover it exactly.</summary>
    public static List<(int Offset, int Length)> Split(ReadOnlySpan<char> text)
    {
        var pieces = new List<(int Offset, int Length)>(text.Length / 4 + 1);
        for (int start = 0; start < text.Length;)
        {
            int end = MatchAt(text, start);
            pieces.Add((start, end - start));
            start = end;
        }
        return pieces;
    }

    /// <summary>The end of the piece that starts at <paramref name="i"/>: the first alternative of the pattern that matches.</summary>
    private static int MatchAt(ReadOnlySpan<char> text, int i)
    {
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if (text[i] == '\'' && TryMatchContraction(text, i, out int contractionEnd)) return contractionEnd;

        CharClass first = Classify(text, i, out int firstWidth);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (first == CharClass.Letter) return SkipWhile(text, i, CharClass.Letter);
        int next = i + firstWidth;
        if (first is CharClass.Space or CharClass.Other && next < text.Length && Classify(text, next, out _) == CharClass.Letter)
            return SkipWhile(text, next, CharClass.Letter);
        // \p{N}
        if (first == CharClass.Number) return next;
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        if (text[i] == ' ' && next < text.Length && Classify(text, next, out _) == CharClass.Other)
            return SkipWhile(text, SkipWhile(text, next, CharClass.Other), CharClass.Newline);
        if (first == CharClass.Other) return SkipWhile(text, SkipWhile(text, i, CharClass.Other), CharClass.Newline);

        // Here the piece starts with white space. Every white-space character is a single UTF-16 unit.
        int runEnd = i;
        while (runEnd < text.Length && Classify(text, runEnd, out _) is CharClass.Space or CharClass.Newline) runEnd++;
        // \s*[\r\n]+ : after backtracking, everything up to and including the run's last newline.
        int lastNewline = text[i..runEnd].LastIndexOfAny('\r', '\n');
        if (lastNewline >= 0) return i + lastNewline + 1;
        // \s+(?!\S) : the run, less its last character when a non-space follows (that one joins the next word).
        if (runEnd == text.Length) return runEnd;
        if (runEnd - i >= 2) return runEnd - 1;
        // \s+
        return runEnd;
    }

    private static bool TryMatchContraction(ReadOnlySpan<char> text, int i, out int end)
    {
        end = 0;
        if (i + 1 >= text.Length) return false;
        char a = FoldCase(text[i + 1]);
        if (a is 's' or 't' or 'm' or 'd')
        {
            end = i + 2;
            return true;
        }
        if (i + 2 >= text.Length) return false;
        char b = FoldCase(text[i + 2]);
        if ((a, b) is ('r', 'e') or ('v', 'e') or ('l', 'l'))
        {
            end = i + 3;
            return true;
        }
        return false;
    }

    /// <summary>Simple Unicode case folding, as far as the contraction letters need it (U+017F LONG S folds to 's').</summary>
    private static char FoldCase(char c) => c switch
    {
        >= 'A' and <= 'Z' => (char)(c + ('a' - 'A')),
        '\u017F' => 's',
        _ => c,
    };

    private static int SkipWhile(ReadOnlySpan<char> text, int i, CharClass wanted)
    {
        while (i < text.Length && Classify(text, i, out int width) == wanted) i += width;
        return i;
    }

    private static CharClass Classify(ReadOnlySpan<char> text, int i, out int width)
    {
        char c = text[i];
        if (c < 128)
        {
            width = 1;
            return AsciiClasses[c];
        }
        if (Rune.DecodeFromUtf16(text[i..], out Rune rune, out width) != OperationStatus.Done)
        {
            // A lone surrogate is not a character; it cannot be a letter, digit or space.
            width = 1;
            return CharClass.Other;
        }
        return ClassifyRune(rune);
    }

    private static CharClass ClassifyRune(Rune rune)
    {
        if (rune.Value is '\r' or '\n') return CharClass.Newline;
        if (Rune.IsWhiteSpace(rune)) return CharClass.Space;
        return Rune.GetUnicodeCategory(rune) switch
        {
            <= UnicodeCategory.OtherLetter => CharClass.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
            _ => CharClass.Other,
        };
    }

    private static CharClass[] BuildAsciiClasses()
    {
        var classes = new CharClass[128];
        for (int c = 0; c < 128; c++) classes[c] = ClassifyRune(new Rune(c));
        return classes;
    }
}
