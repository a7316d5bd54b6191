using System.Globalization;
using System.Text.Json;

namespace Bagel.Data.Tokenization;

/// <summary>JSON reading shared by the tokenizer file readers, with errors that name the file and the key.</summary>
internal static class TokenizerJsonParsing
{
    /// <summary>Parses <paramref name="path"/>; a missing file or invalid JSON becomes a <see cref="TokenizerFormatException"/>.</summary>
    public static JsonDocument ParseFile(string path, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        byte[] bytes = ReadAllBytes(path);
        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is long line ? $"line {line + 1}, byte {e.BytePositionInLine + 1}" : "unknown position";
            throw new TokenizerFormatException(path, where, $"the file is not valid JSON ({e.Message}).", e);
        }
    }

    /// <summary>Reads a whole file; a missing or unreadable file becomes a <see cref="TokenizerFormatException"/>.</summary>
    public static byte[] ReadAllBytes(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new TokenizerFormatException(path, null, "the file does not exist; point the tokenizer at a folder that holds it.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TokenizerFormatException(path, null, $"the file cannot be read ({e.Message}).", e);
        }
    }

    /// <summary>Returns <paramref name="element"/> when it has <paramref name="kind"/>; otherwise throws naming <paramref name="key"/>.</summary>
    public static JsonElement Expect(JsonElement element, JsonValueKind kind, string file, string key)
    {
        if (element.ValueKind != kind)
            throw new TokenizerFormatException(file, key, $"expected a JSON {Describe(kind)}, found {Describe(element.ValueKind)}.");
        return element;
    }

    /// <summary>The property <paramref name="name"/> of <paramref name="parent"/>, which must exist.</summary>
    public static JsonElement Required(JsonElement parent, string name, string file, string parentKey)
    {
        string key = parentKey.Length == 0 ? name : $"{parentKey}.{name}";
        if (parent.ValueKind != JsonValueKind.Object || !parent.TryGetProperty(name, out JsonElement value))
            throw new TokenizerFormatException(file, key, "this key is missing.");
        return value;
    }

    /// <summary>A non-negative 32-bit integer value.</summary>
    public static int ReadId(JsonElement element, string file, string key)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt32(out int id))
            throw new TokenizerFormatException(file, key, $"expected an integer token id, found {element.GetRawText()}.");
        return id;
    }

    /// <summary>A string value.</summary>
    public static string ReadString(JsonElement element, string file, string key) =>
        Expect(element, JsonValueKind.String, file, key).GetString()!;

    /// <summary>An optional boolean flag; absent or null means <paramref name="fallback"/>.</summary>
    public static bool ReadFlag(JsonElement parent, string name, bool fallback, string file, string parentKey)
    {
        if (!parent.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return fallback;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new TokenizerFormatException(file, $"{parentKey}.{name}", $"expected true or false, found {value.GetRawText()}."),
        };
    }

    /// <summary>Reads a vocabulary object (token to id) such as vocab.json or tokenizer.json's <c>model.vocab</c>.</summary>
    public static (Dictionary<string, int> Vocabulary, Dictionary<int, string> TokensById) ReadVocabulary(
        JsonElement vocab, string file, string key, CancellationToken cancellationToken)
    {
        Expect(vocab, JsonValueKind.Object, file, key.Length == 0 ? "the top level" : key);
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        var tokensById = new Dictionary<int, string>();
        foreach (JsonProperty entry in vocab.EnumerateObject())
        {
            if ((vocabulary.Count & 0xFFFF) == 0) cancellationToken.ThrowIfCancellationRequested();
            string token = entry.Name;
            string Location() => key.Length == 0 ? $"key \"{token}\"" : $"{key}.\"{token}\"";
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id))
                throw new TokenizerFormatException(file, Location(), $"expected an integer token id, found {entry.Value.GetRawText()}.");
            if (BpeModelChecks.TryAddVocabularyEntry(vocabulary, tokensById, token, id) is string problem)
                throw new TokenizerFormatException(file, Location(), problem);
        }
        if (vocabulary.Count == 0)
            throw new TokenizerFormatException(file, key.Length == 0 ? null : key, "the vocabulary is empty.");
        return (vocabulary, tokensById);
    }

    /// <summary>
    /// Reads one added token's flags. Hugging Face's lstrip/rstrip/single_word change how the token is matched;
    /// Qwen2 sets them all false, and this tokenizer supports only that.
    /// </summary>
    public static AddedToken ReadAddedToken(JsonElement entry, int id, string file, string key)
    {
        Expect(entry, JsonValueKind.Object, file, key);
        string content = ReadString(Required(entry, "content", file, key), file, $"{key}.content");
        foreach (string flag in (ReadOnlySpan<string>)["lstrip", "rstrip", "single_word"])
        {
            if (ReadFlag(entry, flag, false, file, key))
                throw new TokenizerFormatException(file, $"{key}.{flag}",
                    $"added token \"{content}\" sets {flag}=true, which Qwen2Tokenizer does not support; Qwen2 tokenizers set it false.");
        }
        bool special = ReadFlag(entry, "special", false, file, key);
        return new AddedToken(id, content, special);
    }

    /// <summary>Parses the decimal id used as a key in tokenizer_config.json's <c>added_tokens_decoder</c>.</summary>
    public static int ParseIdKey(string name, string file, string key)
    {
        if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
            throw new TokenizerFormatException(file, key, $"\"{name}\" is not a token id; the keys of this object must be decimal ids.");
        return id;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
