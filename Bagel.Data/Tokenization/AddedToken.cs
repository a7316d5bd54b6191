namespace Bagel.Data.Tokenization;

/// <summary>
/// A token added on top of the BPE vocabulary (Hugging Face's <c>added_tokens</c>), such as <c>&lt;|im_start|&gt;</c>.
/// Its text is matched as one token before BPE runs, wherever it appears in the input.
/// </summary>
/// <param name="Id">The token id.</param>
/// <param name="Content">The token text, matched exactly (case-sensitive, no stripping).</param>
/// <param name="Special">True for special tokens; <see cref="Qwen2Tokenizer.Decode(ReadOnlySpan{int}, bool)"/> can skip them.</param>
public sealed record AddedToken(int Id, string Content, bool Special);
