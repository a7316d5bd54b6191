using System.Text;
using Bagel.Data.Example;
using Bagel.Data.Tokenization;
using Bagel.Tests.Infrastructure;

namespace Bagel.Tests.Data.Tokenization;

/// <summary>The tokenizer the project builds itself (no Qwen2.5 files needed).</summary>
public sealed class ByteLevelBpeTrainerTests
{
    private static readonly string[] Corpus =
    [
        "a red circle on a blue background", "a red square on a green background", "A small red circle in the top left of the picture.",
        "Make the circle blue.", "What colour is the shape?", "The shape is red.", "a blue triangle on a red background",
    ];

    private static readonly string[] Unseen = ["", "héllo wörld", "日本語のテキスト", "emoji 🙂 and 𝒳", "tabs\tand\nnewlines\r\n  spaces", "<|im_start|>"];

    [Fact]
    public void BytesOnlyHasOneTokenPerByteAndNoMerges()
    {
        Qwen2Tokenizer bytes = ByteLevelBpeTrainer.BytesOnly();

        Assert.Equal(256, bytes.VocabularySize);
        Assert.Equal(0, bytes.MergeCount);
        foreach (string text in Unseen)
        {
            int[] ids = bytes.Encode(text);
            Assert.Equal(Encoding.UTF8.GetByteCount(text), ids.Length);
            Assert.Equal(text, bytes.Decode(ids));
        }
    }

    [Fact]
    public void TrainingMergesTheCorpusWordsAndStillEncodesAnyTextLosslessly()
    {
        Qwen2Tokenizer trained = ByteLevelBpeTrainer.Train(Corpus, cancellationToken: TestContext.Current.CancellationToken);

        Assert.InRange(trained.MergeCount, 1, 1024 - 256);
        Assert.Equal(256 + trained.MergeCount, trained.VocabularySize); // every merge made a new token here
        Assert.Single(trained.Encode(" background")); // a frequent word is one token
        Assert.True(trained.Encode(Corpus[0]).Length < Encoding.UTF8.GetByteCount(Corpus[0]) / 2);
        foreach (string text in Unseen.Concat(Corpus)) Assert.Equal(text, trained.Decode(trained.Encode(text)));
    }

    [Fact]
    public void TheVocabularyLimitHoldsAndTrainingIsDeterministic()
    {
        var options = new ByteLevelBpeTrainingOptions { MaxVocabularySize = 260 };
        Qwen2Tokenizer a = ByteLevelBpeTrainer.Train(Corpus, options, cancellationToken: TestContext.Current.CancellationToken);
        Qwen2Tokenizer b = ByteLevelBpeTrainer.Train(Corpus.ToList(), options, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(260, a.VocabularySize);
        Assert.Equal(4, a.MergeCount);
        foreach (string text in Corpus) Assert.Equal(a.Encode(text), b.Encode(text));
    }

    [Fact]
    public void BadOptionsAreNamed()
    {
        var e = Assert.Throws<ArgumentException>(() => ByteLevelBpeTrainer.Train(Corpus, new ByteLevelBpeTrainingOptions { MaxVocabularySize = 100, MinPairFrequency = 0 }, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("MaxVocabularySize is 100", e.Message, StringComparison.Ordinal);
        Assert.Contains("MinPairFrequency is 0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BagelTokensAreAddedAndSaveRoundTripsThroughFromFolder()
    {
        BagelTokenizerSetup setup = BagelSpecialTokens.Apply(ByteLevelBpeTrainer.Train(Corpus, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(4, setup.AddedTokenCount);
        Assert.Equal(setup.Tokenizer.VocabularySize + 4, setup.Tokenizer.Count);
        Assert.Equal(setup.Tokenizer.VocabularySize, setup.SpecialTokenIds.BosTokenId);

        using var folder = new TempDirectory();
        setup.Tokenizer.Save(folder.Path);
        Qwen2Tokenizer loaded = Qwen2Tokenizer.FromFolder(folder.Path, cancellationToken: TestContext.Current.CancellationToken);
        BagelTokenizerSetup reloaded = BagelSpecialTokens.Apply(loaded);

        Assert.Equal(0, reloaded.AddedTokenCount);
        Assert.Equal(setup.SpecialTokenIds, reloaded.SpecialTokenIds);
        Assert.Equal(setup.Tokenizer.Count, loaded.Count);
        Assert.Equal(setup.Tokenizer.MergeCount, loaded.MergeCount);
        foreach (string text in Unseen.Concat(Corpus).Append("<|im_start|>a red circle<|im_end|>"))
            Assert.Equal(setup.Tokenizer.Encode(text), loaded.Encode(text));
    }

    [Fact]
    public async Task TheExampleDataTextsAreWhatTheWriterWrites()
    {
        using var folder = new TempDirectory();
        var writer = new ExampleDataWriter(new ExampleDataOptions { OutputFolder = Path.Combine(folder.Path, "data") });
        List<string> texts = [.. writer.EnumerateTexts()];
        ExampleDataSummary summary = await writer.WriteAsync(cancellationToken: TestContext.Current.CancellationToken);

        var turns = new List<string>();
        foreach (string line in (await File.ReadAllLinesAsync(Path.Combine(summary.Folder, ExampleDataLayout.VlmJsonl), TestContext.Current.CancellationToken)).Where(l => l.Length > 0))
        {
            using var document = System.Text.Json.JsonDocument.Parse(line);
            turns.AddRange(document.RootElement.GetProperty("conversations").EnumerateArray().Select(t => t.GetProperty("value").GetString()!));
        }
        Assert.Equal(turns, texts.TakeLast(turns.Count)); // the VLM turns close the list, in file order
        int captions = writer.Options.T2IFiles * writer.Options.T2IRowsPerFile * 2;
        Assert.All(texts.Take(captions), caption => Assert.Contains("background", caption, StringComparison.Ordinal));
        Assert.True(texts.Count > captions + turns.Count); // the edit instructions lie between
    }
}
