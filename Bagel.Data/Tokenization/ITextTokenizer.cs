namespace Bagel.Data.Tokenization;

/// <summary>
/// What the sample builders need from a tokenizer: text to token ids, without special-token handling beyond what the
/// tokenizer itself does. <see cref="Qwen2Tokenizer"/> implements it; implement it to feed another tokenizer (or a
/// test double) to <see cref="Samples.SampleBuilder"/>. Implementations must be thread-safe: every data worker calls
/// the same instance.
/// </summary>
public interface ITextTokenizer
{
    /// <summary>Encodes <paramref name="text"/> to token ids (no bos/eos added).</summary>
    /// <param name="text">The text.</param>
    /// <returns>The ids.</returns>
    int[] Encode(string text);
}
