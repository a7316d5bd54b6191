using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bagel.Data.Images;
using Bagel.Models.Generation;
using Bagel.Training.Inference;
using TorchSharp;

namespace Bagel.Training.ValidationImages;

/// <summary>One validation entry's outcome: a generated image (with an edit's input), a question's picture and
/// answer, or why it was skipped. The tensors are [H, W, 3] uint8 and owned by the renderer.</summary>
internal sealed record ValidationEntryOutcome(int Index, ValidationPrompt Prompt, torch.Tensor? Pixels = null, torch.Tensor? Input = null,
    string? Answer = null, string? Skipped = null)
{
    /// <summary>The text under the entry's cell in the grid.</summary>
    public string Caption => Prompt.Kind switch
    {
        ValidationPromptKind.Edit => "edit: " + Prompt.Text,
        ValidationPromptKind.Question => $"Q: {Prompt.Text} A: {Answer}",
        _ => Prompt.Text,
    };
}

/// <summary>What a render's sidecar records besides the entries.</summary>
internal sealed record SidecarContext(long Step, string Weights, long Seed, string NoisePurpose, ImageGenerationOptions Generation,
    TextGenerationOptions TextGeneration, InputImageTransforms Transforms, string? PngPath, string? AnswersPath);

/// <summary>The files beside a validation grid: <c>step_NNNNNNN.json</c> (entries in grid order, answers, skipped
/// entries, settings) and <c>step_NNNNNNN_answers.txt</c> (each question with its answer).</summary>
internal static class ValidationImageSidecar
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>The sidecar JSON.</summary>
    /// <param name="c">The settings.</param>
    /// <param name="cells">The entries drawn in the grid, in cell order.</param>
    /// <param name="all">Every entry's outcome, in file order.</param>
    public static byte[] Write(SidecarContext c, IReadOnlyList<ValidationEntryOutcome> cells, IReadOnlyList<ValidationEntryOutcome> all)
    {
        ImageGenerationOptions g = c.Generation;
        int columns = Math.Min(ValidationImageGrid.MaxColumns, Math.Max(1, cells.Count));
        JsonObject Cell(ValidationEntryOutcome o, int k)
        {
            var cell = new JsonObject { ["entry"] = o.Index, ["kind"] = o.Prompt.KindName, ["text"] = o.Prompt.Text };
            if (o.Prompt.ImagePath is { } image) cell["image"] = image;
            if (o.Answer is { } answer) cell["answer"] = answer;
            cell["row"] = k / columns;
            cell["column"] = k % columns;
            return cell;
        }
        var json = new JsonObject
        {
            ["step"] = c.Step,
            ["grid"] = c.PngPath is null ? null : Path.GetFileName(c.PngPath),
            ["answers_file"] = c.AnswersPath is null ? null : Path.GetFileName(c.AnswersPath),
            ["weights"] = c.Weights,
            ["seed"] = c.Seed,
            ["noise"] = $"SeededRandomSource.ForPurpose(seed, \"{c.NoisePurpose}\", worker: entry index)",
            ["height"] = g.Height,
            ["width"] = g.Width,
            ["num_timesteps"] = g.NumTimesteps,
            ["timestep_shift"] = g.TimestepShift,
            ["cfg_text_scale"] = g.CfgTextScale,
            ["cfg_img_scale"] = g.CfgImgScale,
            ["cfg_interval"] = new JsonArray(g.CfgInterval.Lo, g.CfgInterval.Hi),
            ["cfg_renorm_type"] = g.CfgRenormType.ToString(),
            ["cfg_renorm_min"] = g.CfgRenormMin,
            ["max_length"] = c.TextGeneration.MaxLength,
            ["do_sample"] = c.TextGeneration.DoSample,
            ["temperature"] = c.TextGeneration.Temperature,
            ["vae_transform"] = Sizes(c.Transforms.Vae.Options),
            ["vit_transform"] = c.Transforms.Vit is { } vit ? Sizes(vit.Options) : null,
            ["images"] = new JsonArray([.. cells.Select((o, k) => (o, k)).Where(x => x.o.Answer is null).Select(x => (JsonNode)Cell(x.o, x.k))]),
            ["answers"] = new JsonArray([.. cells.Select((o, k) => (o, k)).Where(x => x.o.Answer is not null).Select(x => (JsonNode)Cell(x.o, x.k))]),
            ["skipped"] = new JsonArray([.. all.Where(o => o.Skipped is not null).Select(o => (JsonNode)new JsonObject
            {
                ["entry"] = o.Index, ["kind"] = o.Prompt.KindName, ["text"] = o.Prompt.Text, ["image"] = o.Prompt.ImagePath, ["reason"] = o.Skipped,
            })]),
        };
        return Encoding.UTF8.GetBytes(json.ToJsonString(Indented) + "\n");
    }

    /// <summary>The answers' text file: a header line, then per question its entry, picture, question and answer.</summary>
    public static byte[] Answers(long step, string weights, TextGenerationOptions options, IReadOnlyList<ValidationEntryOutcome> answers)
    {
        var text = new StringBuilder();
        string decoding = options.DoSample
            ? string.Create(CultureInfo.InvariantCulture, $"sampled at temperature {options.Temperature}")
            : "greedy";
        text.Append(CultureInfo.InvariantCulture, $"# Validation answers at step {step} ({weights} weights; {decoding} decoding, at most {options.MaxLength} steps)\n");
        foreach (ValidationEntryOutcome o in answers)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n[entry {o.Index}] {o.Prompt.Source ?? ""} image: {o.Prompt.ImagePath}\n");
            text.Append("Q: ").Append(o.Prompt.Text).Append('\n');
            text.Append("A: ").Append(o.Answer).Append('\n');
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static JsonObject Sizes(ImageTransformOptions t) => new()
    {
        ["max_image_size"] = t.MaxImageSize, ["min_image_size"] = t.MinImageSize, ["image_stride"] = t.ImageStride,
    };
}
