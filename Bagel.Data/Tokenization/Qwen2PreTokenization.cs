using System.Text;

namespace Bagel.Data.Tokenization;

/// <summary>
/// The Qwen2 text pipeline before BPE, as in its tokenizer.json: NFC normalisation, then the split pattern below
/// (contractions, letters with one optional leading non-letter, single digits, punctuation runs, newlines, spaces),
/// which <see cref="Qwen2PreTokenizer"/> implements.
/// </summary>
internal static class Qwen2PreTokenization
{
    /// <summary>Qwen2's pre-tokenizer pattern (tokenizer.json <c>pre_tokenizer.pretokenizers[0].pattern.Regex</c>).</summary>
    public const string SplitPattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>
    /// True when this process can NFC-normalise non-ASCII text. It cannot under
    /// <c>InvariantGlobalization</c> (no ICU): there <see cref="string.Normalize(NormalizationForm)"/> returns its
    /// input unchanged, so text that is not already NFC (decomposed accents) would tokenize differently from Hugging Face.
    /// </summary>
    public static bool IsNfcAvailable { get; } = ProbeNfc();

    /// <summary>Returns <paramref name="text"/> in NFC form (unchanged, without copying, when it already is).</summary>
    public static ReadOnlySpan<char> ToNfc(ReadOnlySpan<char> text)
    {
        if (!IsNfcAvailable || text.IsNormalized(NormalizationForm.FormC)) return text;
        return text.ToString().Normalize(NormalizationForm.FormC);
    }

    /// <summary>
    /// Rejects text holding a lone UTF-16 surrogate (usually a broken "\\ud83d" escape in a JSON caption). It is not
    /// Unicode text: Hugging Face cannot encode it either, and ICU's normaliser would fail on it less clearly.
    /// </summary>
    public static void ThrowIfInvalidUtf16(ReadOnlySpan<char> text, string parameterName)
    {
        int offset = 0;
        while (text[offset..].IndexOfAnyInRange('\uD800', '\uDFFF') is int found and >= 0)
        {
            int i = offset + found;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                offset = i + 2;
                continue;
            }
            throw new ArgumentException(
                $"The text holds a lone UTF-16 surrogate (U+{(int)text[i]:X4}) at index {i}, so it is not valid Unicode and cannot be tokenized; repair or drop it.",
                parameterName);
        }
    }

    private static bool ProbeNfc()
    {
        try
        {
            // "e" + COMBINING ACUTE ACCENT composes to U+00E9 under NFC.
            return "e\u0301".Normalize(NormalizationForm.FormC) == "\u00E9";
        }
        catch (PlatformNotSupportedException)
        {
            return false;
        }
    }
}
