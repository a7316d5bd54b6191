using Bagel.Data.Tokenization;
using Bagel.Models.Generation;

namespace Bagel.Training.ValidationImages;

/// <summary>
/// Validation images during training (<c>TrainerBuilder.UseValidationImages</c>): fixed prompts rendered with the EMA
/// weights every <see cref="EverySteps"/> steps and at the end of the run into a PNG grid with the prompts drawn under
/// the images, a JSON sidecar listing them, and an image in TensorBoard. Rendering never changes training: its noise
/// comes from its own seeded source, torch's global generator and every module's train/eval mode are restored.
/// </summary>
public sealed record ValidationImageOptions
{
    /// <summary>The fixed prompts (see <see cref="ValidationPromptFile"/>); text-to-image ones are rendered. Edits and
    /// questions are parsed but skipped with one warning: the generator has no editing or answering yet (unfinished).</summary>
    public required IReadOnlyList<ValidationPrompt> Prompts { get; init; }

    /// <summary>The tokenizer the model trains with (with BAGEL's special tokens).</summary>
    public required BagelTokenizerSetup Tokenizer { get; init; }

    /// <summary>Render every this many completed steps (and at the end of the run); 0 renders at every checkpoint
    /// (<c>save_every</c>). Default 0.</summary>
    public int EverySteps { get; init; }

    /// <summary>Where the grids go (<c>step_0000100.png</c> and <c>step_0000100.json</c>). Default (null):
    /// <c>&lt;results_dir&gt;/validation</c>, beside <c>&lt;results_dir&gt;/checkpoints</c> by default.</summary>
    public string? OutputFolder { get; init; }

    /// <summary>The sampler settings. Default (null): <see cref="DefaultGeneration"/> at the largest size the model
    /// makes, up to <see cref="DefaultMaxSide"/> pixels per side.</summary>
    public ImageGenerationOptions? Generation { get; init; }

    /// <summary>The seed of the images' noise (prompt i draws from its own stream of it, so every render of the same
    /// weights gives the same grid). Default (null): <c>global_seed</c>.</summary>
    public long? Seed { get; init; }

    /// <summary>Render with the EMA weights (default) or, false, with the weights being trained.</summary>
    public bool UseEma { get; init; } = true;

    /// <summary>The tag of the grid in TensorBoard (and every other <c>IImageMetricSink</c>). Default <c>val/images</c>.</summary>
    public string Tag { get; init; } = "val/images";

    /// <summary>Called after every render, on the loop's thread. Default none.</summary>
    public Action<ValidationImageResult>? OnRendered { get; init; }

    /// <summary>Largest side of the default image size: validation stays cheap next to training.</summary>
    public const int DefaultMaxSide = 512;

    /// <summary>
    /// The default sampler settings: the reference's <c>interleave_inference</c> guidance (text scale 3, interval
    /// (0.4, 1], global renorm, shift 3) with 25 timesteps instead of 50 and image guidance off (scale 1: for
    /// text-to-image that branch only repeats the conditional one).
    /// </summary>
    public static ImageGenerationOptions DefaultGeneration(int height, int width) => new()
    {
        Height = height, Width = width, NumTimesteps = 25, CfgImgScale = 1.0,
    };
}

/// <summary>One render of the validation prompts.</summary>
/// <param name="Step">Completed optimizer steps of the weights rendered.</param>
/// <param name="PngPath">The grid (null when no prompt could be rendered).</param>
/// <param name="SidecarPath">The JSON listing the prompts and settings.</param>
/// <param name="Rendered">Images in the grid.</param>
/// <param name="Skipped">Entries skipped (edits and questions: unfinished).</param>
/// <param name="Elapsed">Wall time of the render.</param>
public sealed record ValidationImageResult(long Step, string? PngPath, string SidecarPath, int Rendered, int Skipped, TimeSpan Elapsed);
