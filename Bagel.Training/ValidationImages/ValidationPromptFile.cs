using System.Text.Json;

namespace Bagel.Training.ValidationImages;

/// <summary>A validation prompts file that cannot be used; the message names the file, the line and the key.</summary>
public sealed class ValidationPromptException(string message) : Exception(message);

/// <summary>
/// Reads a validation prompts file: JSON lines, one object per line; blank lines and lines starting with <c>#</c> are
/// skipped. Each object is one of
/// <list type="bullet">
/// <item><c>{"prompt": "a red circle on a blue background"}</c>: text-to-image;</item>
/// <item><c>{"edit": "make the circle green", "image": "inputs/circle.png"}</c>: image editing;</item>
/// <item><c>{"question": "What colour is the circle?", "image": "inputs/circle.png"}</c>: VLM answering.</item>
/// </list>
/// Image paths are relative to the file's folder (or absolute) and must exist. Any other key, a missing or empty value,
/// or two kinds in one object is an error naming the file and line.
/// </summary>
public static class ValidationPromptFile
{
    /// <summary>The key of a text-to-image prompt.</summary>
    public const string PromptKey = "prompt";

    /// <summary>The key of an edit instruction (with <see cref="ImageKey"/>).</summary>
    public const string EditKey = "edit";

    /// <summary>The key of a VLM question (with <see cref="ImageKey"/>).</summary>
    public const string QuestionKey = "question";

    /// <summary>The key of the input image of an edit or a question.</summary>
    public const string ImageKey = "image";

    /// <summary>Reads and checks <paramref name="path"/>.</summary>
    /// <param name="path">The prompts file.</param>
    /// <returns>The entries, in file order.</returns>
    /// <exception cref="ValidationPromptException">The file is missing, empty or has a bad line.</exception>
    public static IReadOnlyList<ValidationPrompt> Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new ValidationPromptException($"Validation prompts file {full} does not exist.");
        string text;
        try
        {
            text = File.ReadAllText(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ValidationPromptException($"Validation prompts file {full} cannot be read: {e.Message}");
        }
        return Parse(text, full, Path.GetDirectoryName(full)!);
    }

    /// <summary>Parses prompts text.</summary>
    /// <param name="text">JSON lines.</param>
    /// <param name="source">The file name used in messages.</param>
    /// <param name="baseFolder">The folder relative image paths start from.</param>
    /// <returns>The entries, in order.</returns>
    /// <exception cref="ValidationPromptException">A bad line, or no entry at all.</exception>
    public static IReadOnlyList<ValidationPrompt> Parse(string text, string source, string baseFolder)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(baseFolder);
        var prompts = new List<ValidationPrompt>();
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            prompts.Add(ParseLine(line, $"{source}:{i + 1}", baseFolder));
        }
        if (prompts.Count == 0)
            throw new ValidationPromptException($"Validation prompts file {source} has no entry; write one JSON object per line, e.g. {{\"prompt\": \"a red circle\"}}.");
        return prompts;
    }

    private static ValidationPrompt ParseLine(string line, string where, string baseFolder)
    {
        JsonElement root;
        try
        {
            using JsonDocument document = JsonDocument.Parse(line);
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ValidationPromptException($"{where}: not a JSON object ({e.Message}).");
        }
        if (root.ValueKind != JsonValueKind.Object)
            throw new ValidationPromptException($"{where}: expected a JSON object such as {{\"prompt\": \"...\"}}, found {root.ValueKind}.");
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (JsonProperty property in root.EnumerateObject())
        {
            if (property.Name is not (PromptKey or EditKey or QuestionKey or ImageKey))
                throw new ValidationPromptException($"{where}: unknown key '{property.Name}'; the keys are '{PromptKey}', '{EditKey}' + '{ImageKey}', '{QuestionKey}' + '{ImageKey}'.");
            if (property.Value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(property.Value.GetString()))
                throw new ValidationPromptException($"{where}: '{property.Name}' must be a non-empty string.");
            values[property.Name] = property.Value.GetString()!;
        }
        string[] kinds = [.. new[] { PromptKey, EditKey, QuestionKey }.Where(values.ContainsKey)];
        if (kinds.Length != 1)
            throw new ValidationPromptException(kinds.Length == 0
                ? $"{where}: no '{PromptKey}', '{EditKey}' or '{QuestionKey}' key."
                : $"{where}: one entry per line, but this one has {string.Join(" and ", kinds.Select(k => $"'{k}'"))}.");
        string kind = kinds[0];
        values.TryGetValue(ImageKey, out string? image);
        if (kind == PromptKey)
        {
            if (image is not null)
                throw new ValidationPromptException($"{where}: a '{PromptKey}' takes no '{ImageKey}' (use '{EditKey}' to change an image).");
            return new ValidationPrompt(ValidationPromptKind.TextToImage, values[kind], null, where);
        }
        if (image is null) throw new ValidationPromptException($"{where}: '{kind}' needs an '{ImageKey}' (a path relative to the prompts file).");
        string imagePath = Path.GetFullPath(Path.Combine(baseFolder, image));
        if (!File.Exists(imagePath)) throw new ValidationPromptException($"{where}: image '{image}' ({imagePath}) does not exist.");
        return new ValidationPrompt(kind == EditKey ? ValidationPromptKind.Edit : ValidationPromptKind.Question, values[kind], imagePath, where);
    }
}
