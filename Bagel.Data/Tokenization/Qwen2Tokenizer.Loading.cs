using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.ML.Tokenizers;

namespace Bagel.Data.Tokenization;

public sealed partial class Qwen2Tokenizer
{
    /// <summary>Hugging Face's single-file tokenizer (preferred when present).</summary>
    public const string TokenizerJsonFileName = "tokenizer.json";

    /// <summary>The BPE vocabulary of the two-file layout (token to id).</summary>
    public const string VocabFileName = "vocab.json";

    /// <summary>The merges of the two-file layout, one per line in rank order.</summary>
    public const string MergesFileName = "merges.txt";

    /// <summary>Optional beside vocab.json: its <c>added_tokens_decoder</c> lists the added (special) tokens.</summary>
    public const string TokenizerConfigFileName = "tokenizer_config.json";

    /// <summary>
    /// Loads the tokenizer of a model folder (a Qwen2.5 LLM folder or a BAGEL checkpoint folder). It reads
    /// <c>tokenizer.json</c> when present; otherwise <c>vocab.json</c> + <c>merges.txt</c>, plus the added tokens of
    /// <c>tokenizer_config.json</c> when that file exists.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="logger">Receives one information line with the counts, and a warning when NFC is unavailable; optional.</param>
    /// <param name="cancellationToken">Stops the load between entries.</param>
    /// <exception cref="TokenizerFormatException">A file is missing or malformed; the message names it and the line or key.</exception>
    public static Qwen2Tokenizer FromFolder(string folder, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (!Directory.Exists(folder))
            throw new TokenizerFormatException(folder, null, "the folder does not exist; pass the model folder that holds the tokenizer files.");
        string tokenizerJson = Path.Combine(folder, TokenizerJsonFileName);
        if (File.Exists(tokenizerJson)) return FromTokenizerJson(tokenizerJson, logger, cancellationToken);

        string vocab = Path.Combine(folder, VocabFileName);
        string merges = Path.Combine(folder, MergesFileName);
        if (!File.Exists(vocab) && !File.Exists(merges))
            throw new TokenizerFormatException(folder, null,
                $"the folder holds neither {TokenizerJsonFileName} nor {VocabFileName} + {MergesFileName}; copy the tokenizer files of the Qwen2 model into it.");
        string config = Path.Combine(folder, TokenizerConfigFileName);
        return FromVocabAndMerges(vocab, merges, File.Exists(config) ? config : null, logger, cancellationToken);
    }

    /// <summary>Loads a Hugging Face <c>tokenizer.json</c> (model.vocab, model.merges in either form, added_tokens).</summary>
    /// <param name="path">The tokenizer.json file.</param>
    /// <param name="logger">Receives the load summary; optional.</param>
    /// <param name="cancellationToken">Stops the load between entries.</param>
    /// <exception cref="TokenizerFormatException">The file is missing or malformed.</exception>
    public static Qwen2Tokenizer FromTokenizerJson(string path, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        long started = Stopwatch.GetTimestamp();
        return Create(TokenizerJsonReader.Read(path, cancellationToken), logger, started);
    }

    /// <summary>Loads <c>vocab.json</c> + <c>merges.txt</c>, with the added tokens of <c>tokenizer_config.json</c> when given.</summary>
    /// <param name="vocabPath">vocab.json: a JSON object from byte-level token to id.</param>
    /// <param name="mergesPath">merges.txt: "left right" per line in rank order; only a first line starting with "#version" is a header.</param>
    /// <param name="tokenizerConfigPath">tokenizer_config.json, or null for no added tokens.</param>
    /// <param name="logger">Receives the load summary; optional.</param>
    /// <param name="cancellationToken">Stops the load between entries.</param>
    /// <exception cref="TokenizerFormatException">A file is missing or malformed.</exception>
    public static Qwen2Tokenizer FromVocabAndMerges(
        string vocabPath, string mergesPath, string? tokenizerConfigPath = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(vocabPath);
        ArgumentException.ThrowIfNullOrEmpty(mergesPath);
        long started = Stopwatch.GetTimestamp();
        return Create(VocabMergesReader.Read(vocabPath, mergesPath, tokenizerConfigPath, cancellationToken), logger, started);
    }

    /// <summary>
    /// Writes this tokenizer in the two-file layout <see cref="FromFolder"/> reads back to the same ids:
    /// <c>vocab.json</c>, <c>merges.txt</c> and <c>tokenizer_config.json</c> (its <c>added_tokens_decoder</c>). Each
    /// file is written to a temporary name and then renamed, so a reader never sees half a file.
    /// </summary>
    /// <param name="folder">
    /// The folder (created when missing); existing files of these names are replaced. A <c>tokenizer.json</c> already
    /// there would be read instead of them by <see cref="FromFolder"/>, so use a folder without one.
    /// </param>
    public void Save(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        var vocabulary = new System.Text.Json.Nodes.JsonObject();
        foreach (var (token, id) in _vocabulary.OrderBy(entry => entry.Value)) vocabulary[token] = id;
        var decoder = new System.Text.Json.Nodes.JsonObject();
        foreach (AddedToken token in AddedTokens)
        {
            decoder[token.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new System.Text.Json.Nodes.JsonObject
            {
                ["content"] = token.Content, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = token.Special,
            };
        }
        var config = new System.Text.Json.Nodes.JsonObject { ["added_tokens_decoder"] = decoder };
        var json = new System.Text.Json.JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        WriteAtomic(Path.Combine(folder, VocabFileName), vocabulary.ToJsonString(json));
        WriteAtomic(Path.Combine(folder, MergesFileName), "#version: 0.2\n" + string.Concat(_merges.Select(merge => merge + "\n")));
        WriteAtomic(Path.Combine(folder, TokenizerConfigFileName), config.ToJsonString(json));
    }

    private static void WriteAtomic(string path, string text)
    {
        string temp = $"{path}.tmp-{Environment.ProcessId}";
        File.WriteAllText(temp, text, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>A tokenizer over an in-memory model (the BPE trainer's result); the data is checked as a file's would be.</summary>
    internal static Qwen2Tokenizer FromModelData(BpeModelData data, ILogger? logger) => Create(data, logger, Stopwatch.GetTimestamp());

    private static Qwen2Tokenizer Create(BpeModelData data, ILogger? logger, long started)
    {
        var options = new BpeOptions(data.Vocabulary)
        {
            Merges = data.Merges,
            ByteLevel = true,
            // Added tokens are split off before this engine sees the text, and NFC is applied by us per stretch.
            PreTokenizer = Qwen2PreTokenizer.Instance,
        };
        var tokenizer = new Qwen2Tokenizer(BpeTokenizer.Create(options), data.Vocabulary, data.Merges, data.AddedTokens, data.Source);
        if (logger is not null)
        {
            Qwen2TokenizerLog.Loaded(logger, data.Source, tokenizer.VocabularySize, data.Merges.Count, data.AddedTokens.Count,
                tokenizer.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (!IsNormalizationAvailable) Qwen2TokenizerLog.NormalizationUnavailable(logger);
        }
        return tokenizer;
    }
}

/// <summary>The tokenizer's log messages.</summary>
internal static partial class Qwen2TokenizerLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "Loaded Qwen2 tokenizer from {Source}: {VocabularySize} BPE tokens, {MergeCount} merges, {AddedCount} added tokens, {Count} ids in all ({ElapsedMs:F0} ms)")]
    public static partial void Loaded(ILogger logger, string source, int vocabularySize, int mergeCount, int addedCount, int count, double elapsedMs);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning,
        Message = "NFC normalisation is unavailable in this process (InvariantGlobalization is on, so there is no ICU); text that is not already NFC will tokenize differently from Hugging Face. Turn InvariantGlobalization off in the application to fix this.")]
    public static partial void NormalizationUnavailable(ILogger logger);
}
