using Bagel.Data.Tokenization;

namespace Bagel.Tests.Data.Tokenization;

/// <summary>Loading from tokenizer.json and from vocab.json + merges.txt, on the real files and on tiny ones.</summary>
[Collection(Qwen2TokenizerCollection.Name)]
public sealed class Qwen2TokenizerLoadingTests(Qwen2TokenizerFixture fixture)
{
    [Theory]
    [NeedsSharedData("tokenizer/qwen2.5")]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.inp")]
    [NeedsSharedData("tokenizer/qwen2-tokenizer-vectors.out")]
    [InlineData(false)]
    [InlineData(true)]
    public void TokenizerJsonBuiltFromTheSameFilesGivesIdenticalIds(bool pairForm)
    {
        Qwen2Tokenizer reference = fixture.Tokenizer;
        string folder = Qwen2TokenizerFixture.FolderPath;
        using var files = new TinyTokenizerFiles();
        TokenizerJsonTestWriter.Write(
            files.TokenizerJsonPath,
            File.ReadAllText(Path.Combine(folder, Qwen2Tokenizer.VocabFileName)),
            TokenizerJsonTestWriter.ReadMergesTxt(Path.Combine(folder, Qwen2Tokenizer.MergesFileName)),
            pairForm,
            reference.AddedTokens);

        Qwen2Tokenizer fromJson = Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(files.TokenizerJsonPath, fromJson.Source);
        Assert.Equal(reference.Count, fromJson.Count);
        Assert.Equal(reference.AddedTokens, fromJson.AddedTokens);
        foreach (TokenizerTestVector vector in TokenizerTestVectors.Load())
            Assert.Equal(vector.ExpectedIds, fromJson.Encode(vector.Input));
        Assert.Equal([151644, 14990, 151645], fromJson.Encode("<|im_start|>hello<|im_end|>"));
    }

    [Fact]
    public void TinyVocabularyMergesByRank()
    {
        using var files = new TinyTokenizerFiles().WriteDefault();
        Qwen2Tokenizer tokenizer = Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(259, tokenizer.Count);
        Assert.Equal([256], tokenizer.Encode("##"));
        Assert.Equal([258], tokenizer.Encode("ab"));
        // "Ġ a" outranks "a b", so " ab" becomes "Ġa" + "b".
        Assert.Equal([257, 'b'], tokenizer.Encode(" ab"));
        Assert.Equal(" ab##", tokenizer.Decode(tokenizer.Encode(" ab##")));
    }

    [Fact]
    public void OnlyAFirstVersionLineIsAHeader()
    {
        using var files = new TinyTokenizerFiles().WriteDefault();
        files.WriteMerges("#version: 0.2\n" + string.Join('\n', TinyTokenizerFiles.DefaultMerges) + "\n");
        Assert.Equal([256], Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken).Encode("##"));

        files.WriteMerges("a b\n#version: 0.2\n");
        var e = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal("line 2", e.Location);
    }

    [Fact]
    public void TokenizerJsonIsPreferredWhenBothLayoutsArePresent()
    {
        using var files = new TinyTokenizerFiles().WriteDefault();
        var merges = TinyTokenizerFiles.DefaultMerges.Select(m => (m[..m.IndexOf(' ')], m[(m.IndexOf(' ') + 1)..]));
        TokenizerJsonTestWriter.Write(files.TokenizerJsonPath, File.ReadAllText(files.VocabPath), merges, pairForm: true,
            [new AddedToken(259, "<|only_in_json|>", Special: true)]);

        Qwen2Tokenizer tokenizer = Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(files.TokenizerJsonPath, tokenizer.Source);
        Assert.Equal([259], tokenizer.Encode("<|only_in_json|>"));
    }

    [Fact]
    public void AddedTokensComeFromTokenizerConfig()
    {
        using var files = new TinyTokenizerFiles().WriteDefault(
            new AddedToken(259, "<|a|>", Special: true), new AddedToken(260, "<|a|><|b|>", Special: false));
        Qwen2Tokenizer tokenizer = Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(261, tokenizer.Count);
        // Leftmost-longest: the two-part added token wins over its prefix.
        Assert.Equal([258, 260, 259], tokenizer.Encode("ab<|a|><|b|><|a|>"));
        Assert.Equal("ab<|a|><|b|>", tokenizer.Decode([258, 260, 259], skipSpecialTokens: true));
    }

    [Fact]
    public void AddedTokensDecodeAsHuggingFacesByteLevelDecoderDoes()
    {
        // Hugging Face maps an added token through the byte-level alphabet when every character is in it ('é' is
        // the alphabet's character for byte 0xE9, a lone invalid byte), and uses its UTF-8 otherwise (' ' is not).
        using var files = new TinyTokenizerFiles().WriteDefault(
            new AddedToken(259, "<é>", Special: false), new AddedToken(260, "<a b>", Special: false));
        Qwen2Tokenizer tokenizer = Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal([259, 260], tokenizer.Encode("<é><a b>"));
        Assert.Equal("<\uFFFD><a b>", tokenizer.Decode([259, 260]));
    }

    [Fact]
    public void MissingFolderIsNamed()
    {
        string folder = Path.Combine(Path.GetTempPath(), "bagel-no-such-folder-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.FromFolder(folder, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(folder, e.FilePath);
    }

    [Fact]
    public void FolderWithoutTokenizerFilesSaysWhatIsExpected()
    {
        using var files = new TinyTokenizerFiles();
        var e = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains(Qwen2Tokenizer.TokenizerJsonFileName, e.Message);
        Assert.Contains(Qwen2Tokenizer.VocabFileName, e.Message);
    }

    [Fact]
    public void MissingMergesFileIsNamed()
    {
        using var files = new TinyTokenizerFiles().WriteDefault();
        File.Delete(files.MergesPath);
        var e = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(files.MergesPath, e.FilePath);
        Assert.Contains("does not exist", e.Message);
    }

    [Theory]
    [InlineData("Ġ a\na b c\n", "line 2", "two tokens")]
    [InlineData("Ġ a\n\nab\n", "line 3", "two tokens")]
    [InlineData("Ġ  a\n", "line 1", "two tokens")]
    [InlineData("a b\nĠ q\n", "line 2", "\"Ġq\"")]
    [InlineData("a b\n# #\na b\n", "line 3", "repeats line 1")]
    public void MalformedMergeLinesNameTheLine(string merges, string location, string messagePart)
    {
        using var files = new TinyTokenizerFiles().WriteDefault();
        files.WriteMerges(merges);
        var e = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(files.MergesPath, e.FilePath);
        Assert.Equal(location, e.Location);
        Assert.Contains(messagePart, e.Message);
    }

    [Theory]
    [InlineData("{\"a\": 0,\n \"b\": }", "line 2, byte 7", "not valid JSON")]
    [InlineData("{\"a\": 0, \"b\": 0}", "key \"b\"", "id 0 is used by both")]
    [InlineData("{\"a\": 0, \"a\": 1}", "key \"a\"", "appears twice")]
    [InlineData("{\"a\": \"zero\"}", "key \"a\"", "integer token id")]
    [InlineData("{\"a\": -3}", "key \"a\"", "negative")]
    [InlineData("{\"a b\": 0}", "key \"a b\"", "byte-level alphabet")]
    [InlineData("[\"a\"]", "the top level", "JSON object")]
    public void MalformedVocabularyNamesTheKey(string vocabJson, string location, string messagePart)
    {
        using var files = new TinyTokenizerFiles().WriteDefault();
        files.WriteVocab(vocabJson);
        var e = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(files.VocabPath, e.FilePath);
        Assert.Equal(location, e.Location);
        Assert.Contains(messagePart, e.Message);
    }

    [Theory]
    [InlineData("{\"added_tokens_decoder\": {\"97\": {\"content\": \"<x>\"}}}", "added_tokens_decoder.\"97\"", "id 97 is used by both")]
    [InlineData("{\"added_tokens_decoder\": {\"x1\": {\"content\": \"<x>\"}}}", "added_tokens_decoder.\"x1\"", "not a token id")]
    [InlineData("{\"added_tokens_decoder\": {\"300\": {\"special\": true}}}", "added_tokens_decoder.\"300\".content", "missing")]
    [InlineData("{\"added_tokens_decoder\": {\"300\": {\"content\": \"<x>\", \"lstrip\": true}}}", "added_tokens_decoder.\"300\".lstrip", "does not support")]
    [InlineData("{\"added_tokens_decoder\": {\"300\": {\"content\": \"<x>\"}, \"301\": {\"content\": \"<x>\"}}}", "added_tokens_decoder.\"301\"", "list each added token once")]
    [InlineData("{\"added_tokens_decoder\": {\"300\": {\"content\": \"ab\"}}}", "added_tokens_decoder.\"300\"", "vocabulary gives it id 258")]
    public void MalformedAddedTokensNameTheKey(string configJson, string location, string messagePart)
    {
        using var files = new TinyTokenizerFiles().WriteDefault();
        files.WriteConfigJson(configJson);
        var e = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(files.ConfigPath, e.FilePath);
        Assert.Equal(location, e.Location);
        Assert.Contains(messagePart, e.Message);
    }

    [Theory]
    [InlineData("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}, \"merges\": []}}", "model.type", "BPE")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"merges\": []}}", "model.vocab", "missing")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}}", "model.merges[0]", "exactly two")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [7]}}", "model.merges[0]", "expected")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", "model.merges[0]", "\"ab\"")]
    [InlineData("{\"added_tokens\": [{\"content\": \"<x>\"}], \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "added_tokens[0].id", "missing")]
    [InlineData("{\"normalizer\": {\"type\": \"Lowercase\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "normalizer.type", "only NFC")]
    [InlineData("{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}}]}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "pre_tokenizer.pretokenizers[0].pattern.Regex", "not Qwen2's")]
    public void MalformedTokenizerJsonNamesTheKey(string json, string location, string messagePart)
    {
        using var files = new TinyTokenizerFiles();
        File.WriteAllText(files.TokenizerJsonPath, json);
        var e = Assert.Throws<TokenizerFormatException>(() => Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(files.TokenizerJsonPath, e.FilePath);
        Assert.Equal(location, e.Location);
        Assert.Contains(messagePart, e.Message);
    }

    [Fact]
    public void LoadingStopsWhenCancelled()
    {
        using var files = new TinyTokenizerFiles().WriteDefault();
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => Qwen2Tokenizer.FromFolder(files.Folder, cancellationToken: cancelled.Token));
    }
}
