namespace Bagel.Data.Tokenization;

/// <summary>
/// The four tokens BAGEL's sequence layout uses (reference <c>data/data_utils.py</c>, <c>add_special_tokens</c>):
/// every text item is wrapped in <c>&lt;|im_start|&gt;</c> … <c>&lt;|im_end|&gt;</c>, every image in
/// <c>&lt;|vision_start|&gt;</c> … <c>&lt;|vision_end|&gt;</c>.
/// </summary>
public static class BagelSpecialTokens
{
    /// <summary>BAGEL's <c>bos_token_id</c>: starts every text split (151644 in Qwen2.5).</summary>
    public const string BeginOfText = "<|im_start|>";

    /// <summary>BAGEL's <c>eos_token_id</c>: ends every text split (151645 in Qwen2.5).</summary>
    public const string EndOfText = "<|im_end|>";

    /// <summary>BAGEL's <c>start_of_image</c>: opens every ViT or VAE image (151652 in Qwen2.5).</summary>
    public const string StartOfImage = "<|vision_start|>";

    /// <summary>BAGEL's <c>end_of_image</c>: closes every ViT or VAE image (151653 in Qwen2.5).</summary>
    public const string EndOfImage = "<|vision_end|>";

    /// <summary>The four tokens, in the order the reference adds missing ones.</summary>
    public static IReadOnlyList<string> All { get; } = [BeginOfText, EndOfText, StartOfImage, EndOfImage];

    /// <summary>
    /// The reference's <c>add_special_tokens</c>: adds whichever of the four tokens <paramref name="tokenizer"/> lacks
    /// (none for Qwen2.5) and returns the ids the packer needs. When <see cref="BagelTokenizerSetup.AddedTokenCount"/>
    /// is above 0 the model must resize its embeddings to the new tokenizer's <see cref="Qwen2Tokenizer.Count"/>.
    /// </summary>
    /// <param name="tokenizer">The loaded tokenizer; it is not changed.</param>
    public static BagelTokenizerSetup Apply(Qwen2Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        Qwen2Tokenizer withTokens = tokenizer.WithSpecialTokens(All, out int added);
        var ids = new BagelSpecialTokenIds(
            BosTokenId: withTokens.GetId(BeginOfText),
            EosTokenId: withTokens.GetId(EndOfText),
            StartOfImage: withTokens.GetId(StartOfImage),
            EndOfImage: withTokens.GetId(EndOfImage));
        return new BagelTokenizerSetup(withTokens, ids, added);
    }
}

/// <summary>The token ids BAGEL's packer puts around text and images.</summary>
/// <param name="BosTokenId">Id of <c>&lt;|im_start|&gt;</c>, which starts every text split.</param>
/// <param name="EosTokenId">Id of <c>&lt;|im_end|&gt;</c>, which ends every text split.</param>
/// <param name="StartOfImage">Id of <c>&lt;|vision_start|&gt;</c>, before every image's tokens.</param>
/// <param name="EndOfImage">Id of <c>&lt;|vision_end|&gt;</c>, after every image's tokens.</param>
public sealed record BagelSpecialTokenIds(int BosTokenId, int EosTokenId, int StartOfImage, int EndOfImage);

/// <summary>The result of <see cref="BagelSpecialTokens.Apply"/>.</summary>
/// <param name="Tokenizer">The tokenizer to use from now on (the one given when nothing was added).</param>
/// <param name="SpecialTokenIds">The ids of BAGEL's four tokens in <paramref name="Tokenizer"/>.</param>
/// <param name="AddedTokenCount">How many of the four were added (0 for Qwen2.5).</param>
public sealed record BagelTokenizerSetup(Qwen2Tokenizer Tokenizer, BagelSpecialTokenIds SpecialTokenIds, int AddedTokenCount);
