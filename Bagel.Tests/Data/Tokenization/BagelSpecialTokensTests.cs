using Bagel.Data.Tokenization;

namespace Bagel.Tests.Data.Tokenization;

/// <summary>BAGEL's add_special_tokens step on Qwen2.5 (nothing to add) and on a tokenizer that lacks the tokens.</summary>
[Collection(Qwen2TokenizerCollection.Name)]
public sealed class BagelSpecialTokensTests(Qwen2TokenizerFixture fixture)
{
    [Fact]
    [NeedsSharedData("tokenizer/qwen2.5")]
    public void Qwen25AlreadyHasAllFourSoNothingIsAdded()
    {
        Qwen2Tokenizer tokenizer = fixture.Tokenizer;
        BagelTokenizerSetup setup = BagelSpecialTokens.Apply(tokenizer);

        Assert.Equal(0, setup.AddedTokenCount);
        Assert.Same(tokenizer, setup.Tokenizer);
        Assert.Equal(151_665, setup.Tokenizer.Count);
        Assert.Equal(new BagelSpecialTokenIds(BosTokenId: 151_644, EosTokenId: 151_645, StartOfImage: 151_652, EndOfImage: 151_653), setup.SpecialTokenIds);
    }

    [Fact]
    public void MissingTokensAreAddedAsSpecialWithTheNextIds()
    {
        using var files = new TinyTokenizerFiles().WriteDefault(new AddedToken(259, BagelSpecialTokens.EndOfText, Special: true));
        Qwen2Tokenizer tokenizer = Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(260, tokenizer.Count);

        BagelTokenizerSetup setup = BagelSpecialTokens.Apply(tokenizer);

        Assert.Equal(3, setup.AddedTokenCount);
        Assert.Equal(263, setup.Tokenizer.Count);
        Assert.Equal(260, tokenizer.Count);
        Assert.Equal(new BagelSpecialTokenIds(BosTokenId: 260, EosTokenId: 259, StartOfImage: 261, EndOfImage: 262), setup.SpecialTokenIds);
        Assert.All([260, 261, 262], id => Assert.True(setup.Tokenizer.IsSpecial(id)));
        Assert.Equal([260, 258, 259, 261, 262], setup.Tokenizer.Encode("<|im_start|>ab<|im_end|><|vision_start|><|vision_end|>"));
        Assert.Equal("<|im_start|>ab<|im_end|>", setup.Tokenizer.Decode([260, 258, 259]));
    }

    [Fact]
    public void ApplyingTwiceAddsNothingTheSecondTime()
    {
        using var files = new TinyTokenizerFiles().WriteDefault();
        BagelTokenizerSetup first = BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken));
        BagelTokenizerSetup second = BagelSpecialTokens.Apply(first.Tokenizer);

        Assert.Equal(4, first.AddedTokenCount);
        Assert.Equal(0, second.AddedTokenCount);
        Assert.Equal(first.SpecialTokenIds, second.SpecialTokenIds);
    }
}
