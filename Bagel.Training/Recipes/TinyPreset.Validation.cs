using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bagel.Data.Example;
using Bagel.Data.Images;
using Bagel.Training.Checkpoints;
using Bagel.Training.ValidationImages;

namespace Bagel.Training.Recipes;

public static partial class TinyPreset
{
    /// <summary>The file name of the tiny preset's validation prompts in its results folder.</summary>
    public const string ValidationPromptsFileName = "validation_prompts.jsonl";

    /// <summary>The VAE-stream image transform of the example data (max 64, min 32, stride 16 px): what the tiny
    /// model's generation branch trains on, and how its validation edits and a loaded checkpoint resize input images.</summary>
    public static ImageTransformOptions VaeImageTransform { get; } = Sizes(new ExampleDataOptions { OutputFolder = "" }.VaeTransform);

    /// <summary>The ViT-stream image transform of the example data (max 56, min 28, stride 14 px).</summary>
    public static ImageTransformOptions VitImageTransform { get; } = Sizes(new ExampleDataOptions { OutputFolder = "" }.VitTransform);

    private static ImageTransformOptions Sizes(ExampleTransformSizes sizes) =>
        new() { MaxImageSize = sizes.MaxImageSize, MinImageSize = sizes.MinImageSize, ImageStride = sizes.ImageStride };

    /// <summary>The preset's validation images: the prompts file, its tokenizer, the example data's transforms, 64 px.</summary>
    private static ValidationImageOptions ValidationImageSettings(TinyPresetOptions options, string results, string dataFolder,
        Bagel.Data.Tokenization.BagelTokenizerSetup tokenizer, Action<ValidationImageResult> onRendered) => new()
    {
        Prompts = ValidationPromptFile.Load(WriteOrReuseValidationPrompts(results, dataFolder)),
        Tokenizer = tokenizer,
        Generation = ValidationImageOptions.DefaultGeneration(MaxLatentSize * 16, MaxLatentSize * 16) with { NumTimesteps = options.ValidationImageTimesteps },
        VaeTransform = VaeImageTransform,
        VitTransform = VitImageTransform,
        OnRendered = onRendered,
    };

    /// <summary>
    /// The preset's validation prompts file, written on first use, then kept (so a user's edits stay): the short
    /// captions of the example data's first four text-to-image rows (so the grid shows whether the model learnt them),
    /// an edit of the first VLM picture with a background instruction worded as in the editing data, and that
    /// picture's first question from the VLM data.
    /// </summary>
    private static string WriteOrReuseValidationPrompts(string results, string dataFolder)
    {
        string path = Path.Combine(results, ValidationPromptsFileName);
        if (File.Exists(path)) return path;
        var writer = new ExampleDataWriter(new ExampleDataOptions { OutputFolder = dataFolder });
        // EnumerateTexts yields each T2I row's short caption, then its long one, then the edit wordings, then the VLM turns.
        IEnumerable<string> captions = writer.EnumerateTexts().Take(8).Where((_, i) => i % 2 == 0);
        var text = new StringBuilder("# Validation prompts of the tiny preset: one JSON object per line ({\"prompt\": ...}, {\"edit\": ..., \"image\": ...}, "
                                     + "{\"question\": ..., \"image\": ...}; image paths relative to this file; see docs/generation.md).\n");
        foreach (string caption in captions) text.Append(new JsonObject { ["prompt"] = caption }.ToJsonString()).Append('\n');
        if (FirstVlmPicture(dataFolder) is { } vlm)
        {
            string image = Path.GetRelativePath(results, vlm.Image).Replace('\\', '/');
            // A background change applies to any picture; the editing data words it this way.
            string? edit = writer.EnumerateTexts().FirstOrDefault(t => t.StartsWith("change the background to ", StringComparison.Ordinal));
            if (edit is not null) text.Append(new JsonObject { ["edit"] = edit, ["image"] = image }.ToJsonString()).Append('\n');
            text.Append(new JsonObject { ["question"] = vlm.Question, ["image"] = image }.ToJsonString()).Append('\n');
        }
        CheckpointFiles.WriteBytesAtomic(path, Encoding.UTF8.GetBytes(text.ToString()));
        return path;
    }

    /// <summary>The first VLM line's picture (full path) and its first question without the <c>&lt;image&gt;</c> tag;
    /// null when the data has no such line or picture.</summary>
    private static (string Image, string Question)? FirstVlmPicture(string dataFolder)
    {
        string jsonl = Path.Combine(dataFolder, ExampleDataLayout.VlmJsonl);
        if (!File.Exists(jsonl)) return null;
        string? line = File.ReadLines(jsonl).FirstOrDefault(l => l.Trim().Length > 0);
        if (line is null) return null;
        using JsonDocument document = JsonDocument.Parse(line);
        JsonElement root = document.RootElement;
        if (!root.TryGetProperty("image", out JsonElement name) || !root.TryGetProperty("conversations", out JsonElement turns)) return null;
        string image = Path.Combine(dataFolder, ExampleDataLayout.VlmImagesFolder, name.GetString() ?? "");
        string? question = turns.EnumerateArray().Select(t => t.GetProperty("value").GetString()).FirstOrDefault();
        if (question is null || !File.Exists(image)) return null;
        question = question.Replace("<image>", "", StringComparison.Ordinal).Trim();
        return question.Length == 0 ? null : (image, question);
    }
}
