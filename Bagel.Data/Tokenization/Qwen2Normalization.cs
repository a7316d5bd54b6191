using System.Text;

namespace Bagel.Data.Tokenization;

/// <summary>
/// The first step of Qwen2's text pipeline (tokenizer.json <c>normalizer</c>: NFC), and the check that the text is
/// valid UTF-16 at all. <see cref="Qwen2PreTokenizer"/> does the next step.
/// </summary>
internal static class Qwen2Normalization
{
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
