using System.Text.Json;
using Bagel.Data.Tokenization;

namespace Bagel.Tests.Data.Tokenization;

/// <summary>Writes a tokenizer.json in Hugging Face's layout (the parts Qwen2's has) from vocab, merges and added tokens.</summary>
internal static class TokenizerJsonTestWriter
{
    /// <summary>The split regex of Qwen2's published tokenizer.json, written out here independently of the library.</summary>
    public const string Qwen2SplitRegex =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <param name="path">Where to write.</param>
    /// <param name="vocabJson">The vocab.json object, copied verbatim as model.vocab.</param>
    /// <param name="merges">The merges in rank order, as (left, right).</param>
    /// <param name="pairForm">True: ["left","right"] (tokenizers 0.20+); false: "left right" strings (older files).</param>
    /// <param name="addedTokens">The added_tokens entries.</param>
    public static void Write(string path, string vocabJson, IEnumerable<(string Left, string Right)> merges, bool pairForm, IEnumerable<AddedToken> addedTokens)
    {
        using FileStream stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("version", "1.0");
        json.WriteNull("truncation");
        json.WriteNull("padding");
        json.WriteStartArray("added_tokens");
        foreach (AddedToken token in addedTokens)
        {
            json.WriteStartObject();
            json.WriteNumber("id", token.Id);
            json.WriteString("content", token.Content);
            json.WriteBoolean("single_word", false);
            json.WriteBoolean("lstrip", false);
            json.WriteBoolean("rstrip", false);
            json.WriteBoolean("normalized", false);
            json.WriteBoolean("special", token.Special);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartObject("normalizer");
        json.WriteString("type", "NFC");
        json.WriteEndObject();
        json.WriteStartObject("pre_tokenizer");
        json.WriteString("type", "Sequence");
        json.WriteStartArray("pretokenizers");
        json.WriteStartObject();
        json.WriteString("type", "Split");
        json.WriteStartObject("pattern");
        json.WriteString("Regex", Qwen2SplitRegex);
        json.WriteEndObject();
        json.WriteString("behavior", "Isolated");
        json.WriteBoolean("invert", false);
        json.WriteEndObject();
        json.WriteStartObject();
        json.WriteString("type", "ByteLevel");
        json.WriteBoolean("add_prefix_space", false);
        json.WriteBoolean("trim_offsets", false);
        json.WriteBoolean("use_regex", false);
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteStartObject("model");
        json.WriteString("type", "BPE");
        json.WriteNull("dropout");
        json.WriteNull("unk_token");
        json.WriteString("continuing_subword_prefix", "");
        json.WriteString("end_of_word_suffix", "");
        json.WriteBoolean("fuse_unk", false);
        json.WriteBoolean("byte_fallback", false);
        json.WritePropertyName("vocab");
        json.WriteRawValue(vocabJson, skipInputValidation: true);
        json.WriteStartArray("merges");
        foreach (var (left, right) in merges)
        {
            if (pairForm)
            {
                json.WriteStartArray();
                json.WriteStringValue(left);
                json.WriteStringValue(right);
                json.WriteEndArray();
            }
            else
            {
                json.WriteStringValue(left + " " + right);
            }
        }
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>Reads merges.txt lines into pairs (no header in the files these tests use).</summary>
    public static List<(string Left, string Right)> ReadMergesTxt(string path) =>
        [.. File.ReadLines(path).Where(line => line.Length > 0).Select(line =>
        {
            int space = line.IndexOf(' ');
            return (line[..space], line[(space + 1)..]);
        })];
}
