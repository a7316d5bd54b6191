using Bagel.Data.Tokenization;

namespace Bagel.Tests.Data.Tokenization;

/// <summary>Qwen2Tokenizer on the real Qwen2.5 files against llama.cpp's vectors and the facts in SOURCES.md.</summary>
[Collection(Qwen2TokenizerCollection.Name)]
[NeedsSharedData("tokenizer/qwen2.5")]
public sealed class Qwen2TokenizerTests(Qwen2TokenizerFixture fixture)
{
    private Qwen2Tokenizer Tokenizer => fixture.Tokenizer;

    [Fact]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.inp")]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.out")]
    public void AllLlamaCppVectorsEncodeExactly()
    {
        var vectors = TokenizerTestVectors.Load();
        Assert.Equal(TokenizerTestVectors.ExpectedCaseCount, vectors.Count);
        var mismatches = vectors
            .Select(v => (Vector: v, Actual: Tokenizer.Encode(v.Input)))
            .Where(r => !r.Actual.SequenceEqual(r.Vector.ExpectedIds))
            .Select(r => $"case {r.Vector.Index} \"{r.Vector.Input}\": expected [{string.Join(' ', r.Vector.ExpectedIds)}], got [{string.Join(' ', r.Actual)}]")
            .ToList();
        Assert.True(mismatches.Count == 0, string.Join('\n', mismatches));
    }

    [Fact]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.inp")]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.out")]
    public void DecodeOfEncodeGivesBackEveryVectorInput()
    {
        foreach (TokenizerTestVector vector in TokenizerTestVectors.Load())
            Assert.Equal(vector.Input, Tokenizer.Decode(Tokenizer.Encode(vector.Input)));
    }

    [Fact]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.inp")]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.out")]
    public void CountTokensAgreesWithEncodeOnEveryVector()
    {
        foreach (TokenizerTestVector vector in TokenizerTestVectors.Load())
            Assert.Equal(vector.ExpectedIds.Length, Tokenizer.CountTokens(vector.Input));
    }

    [Theory]
    [InlineData("Hello world", new[] { 9707, 1879 })]
    [InlineData(" Hello", new[] { 21927 })]
    [InlineData("   Hello", new[] { 256, 21927 })]
    [InlineData("3333", new[] { 18, 18, 18, 18 })]
    [InlineData("\n =", new[] { 198, 284 })]
    [InlineData("", new int[0])]
    public void SpotChecksFromSourcesEncodeExactly(string text, int[] expected) =>
        Assert.Equal(expected, Tokenizer.Encode(text));

    [Fact]
    public void SpecialTokenTextIsMatchedAsOneToken() =>
        Assert.Equal([151644, 14990, 151645], Tokenizer.Encode("<|im_start|>hello<|im_end|>"));

    [Fact]
    public void AdjacentSpecialTokensAndSurroundingTextAreSplitCorrectly()
    {
        int[] expected = [.. Tokenizer.Encode("a"), 151645, 151644, .. Tokenizer.Encode(" b"), 151652, 151653];
        Assert.Equal(expected, Tokenizer.Encode("a<|im_end|><|im_start|> b<|vision_start|><|vision_end|>"));
    }

    [Fact]
    public void CountsMatchQwen25()
    {
        Assert.Equal(151_643, Tokenizer.VocabularySize);
        Assert.Equal(22, Tokenizer.AddedTokens.Count);
        // tokenizer_config.json marks 151643..151656 special and the tool-call / fill-in-the-middle tokens not.
        Assert.Equal(Enumerable.Range(151_643, 14), Tokenizer.AddedTokens.Where(t => t.Special).Select(t => t.Id).Order());
        Assert.Equal(Enumerable.Range(151_657, 8), Tokenizer.AddedTokens.Where(t => !t.Special).Select(t => t.Id).Order());
        Assert.Equal(151_665, Tokenizer.Count);
        Assert.Equal(Enumerable.Range(151_643, 22), Tokenizer.AddedTokens.Select(t => t.Id).Order());
    }

    [Theory]
    [InlineData("!", 0)]
    [InlineData("Ġ", 220)]
    [InlineData("ĊĊ", 271)]
    [InlineData("Ġworld", 1879)]
    [InlineData("Hello", 9707)]
    [InlineData("hello", 14990)]
    [InlineData("ĠHello", 21927)]
    [InlineData("<|endoftext|>", 151643)]
    [InlineData("<|im_start|>", 151644)]
    [InlineData("<|im_end|>", 151645)]
    [InlineData("<|vision_start|>", 151652)]
    [InlineData("<|vision_end|>", 151653)]
    [InlineData("<|file_sep|>", 151664)]
    public void TokenAndIdLookUpBothWays(string token, int id)
    {
        Assert.Equal(id, Tokenizer.GetId(token));
        Assert.Equal(token, Tokenizer.GetToken(id));
    }

    [Theory]
    [InlineData("##", 565)]
    [InlineData("#include", 1067)]
    public void MergesStartingWithHashAreKept(string text, int singleId) =>
        Assert.Equal([singleId], Tokenizer.Encode(text));

    [Fact]
    public void DecodeSkipsSpecialTokensOnlyWhenAsked()
    {
        int[] ids = Tokenizer.Encode("<|im_start|>hello<|im_end|>");
        Assert.Equal("<|im_start|>hello<|im_end|>", Tokenizer.Decode(ids));
        Assert.Equal("hello", Tokenizer.Decode(ids, skipSpecialTokens: true));
        // <tool_call> is an added token that tokenizer_config.json does not mark special: it stays.
        Assert.Equal("<tool_call>hello", Tokenizer.Decode([151_657, 14_990], skipSpecialTokens: true));
        Assert.True(Tokenizer.IsSpecial(151_644));
        Assert.False(Tokenizer.IsSpecial(14_990));
        Assert.False(Tokenizer.IsSpecial(151_657));
    }

    [Fact]
    public void DecodeOfPartOfAMultiByteCharacterGivesTheReplacementCharacter()
    {
        const string hieroglyph = "\U00013000"; // four UTF-8 bytes that no single Qwen2 token holds
        int[] ids = Tokenizer.Encode(hieroglyph);
        Assert.True(ids.Length > 1, "the hieroglyph should take more than one byte-level token");
        Assert.Equal(hieroglyph, Tokenizer.Decode(ids));
        Assert.Contains('\uFFFD', Tokenizer.Decode(ids.AsSpan(0, 1)));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(151_665)]
    public void DecodeOfAnUnknownIdThrowsNamingTheId(int id)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Decode([14_990, id]));
        Assert.Contains($"id {id}", e.Message);
    }

    [Theory]
    // The surrogate is passed as a number: test-case serialisation would replace a lone surrogate inside a string.
    [InlineData("ab", 0xD800, "c", 2)]
    [InlineData("\U0001F999 ", 0xDC00, "", 3)]
    [InlineData("x", 0xD83D, "", 1)]
    public void TextWithALoneSurrogateIsRejectedNamingTheIndex(string before, int surrogate, string after, int index)
    {
        string text = before + (char)surrogate + after;
        var e = Assert.Throws<ArgumentException>(() => Tokenizer.Encode(text));
        Assert.Contains($"index {index}", e.Message);
        Assert.Throws<ArgumentException>(() => Tokenizer.CountTokens(text));
    }

    [Fact]
    public void UnknownTokenLookUpFailsClearly()
    {
        Assert.False(Tokenizer.TryGetId("<|no_such_token|>", out _));
        var e = Assert.Throws<KeyNotFoundException>(() => Tokenizer.GetId("<|no_such_token|>"));
        Assert.Contains("<|no_such_token|>", e.Message);
    }

    [Fact]
    public void DecomposedAccentsAreNormalisedToNfcBeforeBpe()
    {
        if (!Qwen2Tokenizer.IsNormalizationAvailable)
            Assert.Skip("NFC normalisation needs ICU, and this test process runs with InvariantGlobalization.");
        Assert.Equal(Tokenizer.Encode("caf\u00E9"), Tokenizer.Encode("cafe\u0301"));
    }

    [Fact]
    [NeedsSharedData("tokenizer/qwen2.5")]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.inp")]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.out")]
    public void MergingAgreesWithAPlainReferenceBpeOnShuffledVectorTextAndLongWords()
    {
        string folder = Qwen2TokenizerFixture.FolderPath;
        var reference = new ReferenceBpe(Path.Combine(folder, Qwen2Tokenizer.VocabFileName), Path.Combine(folder, Qwen2Tokenizer.MergesFileName));
        // Words of the vectors (Khmer, Bulgarian, Chinese, emoji, code, digits, odd spaces) recombined at random.
        string[] words = [.. TokenizerTestVectors.Load().SelectMany(v => v.Input.Split(' ')).Where(w => w.Length > 0).Distinct()];
        var random = new Random(7);
        for (int sample = 0; sample < 300; sample++)
        {
            string text = string.Join(random.Next(4) == 0 ? "  " : " ", Enumerable.Range(0, random.Next(1, 12)).Select(_ => words[random.Next(words.Length)]));
            AssertMatchesReference(reference, text);
        }
        // Long words, beyond the library's word cache (15 characters), and long punctuation and space runs.
        string letters = new([.. Enumerable.Range(0, 400).Select(_ => "abcdefghijklmnopqrstuvwxyzéü"[random.Next(28)])]);
        string hanzi = new([.. Enumerable.Range(0, 200).Select(_ => (char)random.Next(0x4E00, 0x9FA5))]);
        foreach (string text in (string[])[letters, " " + letters, hanzi, new string('=', 300), new string(' ', 300) + "x", "x" + new string('\n', 50)])
            AssertMatchesReference(reference, text);
    }

    private void AssertMatchesReference(ReferenceBpe reference, string text)
    {
        int[] expected = [.. Qwen2PreTokenizer.Split(text).SelectMany(p => reference.EncodePiece(text.Substring(p.Offset, p.Length)))];
        Assert.Equal(expected, Tokenizer.Encode(text));
    }

    [Fact]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.inp")]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.out")]
    public void ParallelEncodesEqualSerialEncodes()
    {
        var vectors = TokenizerTestVectors.Load();
        string[] texts = [.. Enumerable.Range(0, 40).SelectMany(round => vectors.Select(v => round % 2 == 0 ? v.Input : v.Input + " <|im_end|>" + round))];
        int[][] serial = [.. texts.Select(Tokenizer.Encode)];
        var parallel = new int[texts.Length][];
        Parallel.For(0, texts.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => parallel[i] = Tokenizer.Encode(texts[i]));
        for (int i = 0; i < texts.Length; i++) Assert.Equal(serial[i], parallel[i]);
    }
}
