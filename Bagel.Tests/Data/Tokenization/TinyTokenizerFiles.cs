using System.Text.Json;
using Bagel.Data.Tokenization;

namespace Bagel.Tests.Data.Tokenization;

/// <summary>
/// Writes small tokenizer folders for loader tests: a byte-level vocabulary of the 256 byte characters (id = byte
/// value) plus a few merged tokens, merges.txt lines as given, and optional added tokens.
/// </summary>
internal sealed class TinyTokenizerFiles : IDisposable
{
    /// <summary>The merges of the tiny tokenizer, in rank order; the first starts with '#' and is a real merge.</summary>
    public static readonly string[] DefaultMerges = ["# #", "Ġ a", "a b"];

    public TinyTokenizerFiles()
    {
        Folder = Path.Combine(Path.GetTempPath(), "bagel-tokenizer-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
    }

    public string Folder { get; }

    public string VocabPath => Path.Combine(Folder, Qwen2Tokenizer.VocabFileName);

    public string MergesPath => Path.Combine(Folder, Qwen2Tokenizer.MergesFileName);

    public string ConfigPath => Path.Combine(Folder, Qwen2Tokenizer.TokenizerConfigFileName);

    public string TokenizerJsonPath => Path.Combine(Folder, Qwen2Tokenizer.TokenizerJsonFileName);

    /// <summary>The 256 byte characters (id = byte) followed by the results of <see cref="DefaultMerges"/>.</summary>
    public static Dictionary<string, int> DefaultVocabulary()
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int b = 0; b < 256; b++) vocab.Add(ByteChar(b).ToString(), b);
        foreach (string merge in DefaultMerges) vocab.Add(merge.Replace(" ", ""), vocab.Count);
        return vocab;
    }

    /// <summary>GPT-2's byte-to-unicode character for byte <paramref name="b"/> (written out independently of the library).</summary>
    public static char ByteChar(int b)
    {
        bool printable = b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        if (printable) return (char)b;
        int shifted = 0;
        for (int i = 0; i < b; i++)
        {
            if (!(i is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF)) shifted++;
        }
        return (char)(256 + shifted);
    }

    /// <summary>Writes the default vocab.json and merges.txt, and tokenizer_config.json when tokens are given.</summary>
    public TinyTokenizerFiles WriteDefault(params AddedToken[] addedTokens)
    {
        WriteVocab(JsonSerializer.Serialize(DefaultVocabulary()));
        WriteMerges(string.Join('\n', DefaultMerges) + "\n");
        if (addedTokens.Length > 0) WriteConfig(addedTokens);
        return this;
    }

    public void WriteVocab(string json) => File.WriteAllText(VocabPath, json);

    public void WriteMerges(string text) => File.WriteAllText(MergesPath, text);

    public void WriteConfig(IEnumerable<AddedToken> tokens)
    {
        var decoder = tokens.ToDictionary(
            token => token.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            token => new { content = token.Content, lstrip = false, normalized = false, rstrip = false, single_word = false, special = token.Special });
        WriteConfigJson(JsonSerializer.Serialize(new { added_tokens_decoder = decoder, tokenizer_class = "Qwen2Tokenizer" }));
    }

    public void WriteConfigJson(string json) => File.WriteAllText(ConfigPath, json);

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); }
        catch (IOException) { /* a leftover temp folder is harmless */ }
    }
}
