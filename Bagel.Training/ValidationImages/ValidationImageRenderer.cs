using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Training.Checkpoints;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Bagel.Training.ValidationImages;

/// <summary>
/// Renders the validation prompts with a BAGEL model into <c>step_NNNNNNN.png</c> (the grid) and
/// <c>step_NNNNNNN.json</c> (prompts, seed, sampler settings) under the output folder, both written atomically. The
/// render leaves no trace in training: no gradients, every module's train/eval flag and torch's global generator are
/// put back, and the noise of prompt i comes from its own <see cref="SeededRandomSource"/>
/// (<see cref="NoisePurpose"/>/i of the seed), so the same weights always give the same grid.
/// </summary>
public sealed partial class ValidationImageRenderer
{
    /// <summary>The purpose name the per-prompt noise seeds derive from.</summary>
    public const string NoisePurpose = "validation_images";

    private readonly ValidationImageOptions _options;
    private readonly FluxAutoEncoder _vae;
    private readonly ILogger _logger;
    private readonly string _folder;
    private readonly long _seed;
    private bool _warnedSkipped;

    /// <summary>Creates the renderer.</summary>
    /// <param name="options">The prompts and settings; <see cref="ValidationImageOptions.OutputFolder"/> and
    /// <see cref="ValidationImageOptions.Seed"/> must be set (the trainer fills them from <c>results_dir</c> and <c>global_seed</c>).</param>
    /// <param name="vae">The autoencoder that decodes the latents.</param>
    /// <param name="logger">Receives the warning about skipped entries; optional.</param>
    /// <exception cref="ArgumentException">No output folder or seed.</exception>
    public ValidationImageRenderer(ValidationImageOptions options, FluxAutoEncoder vae, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(vae);
        _options = options;
        _vae = vae;
        _logger = logger ?? NullLogger.Instance;
        _folder = Path.GetFullPath(options.OutputFolder ?? throw new ArgumentException("ValidationImageOptions.OutputFolder is not set.", nameof(options)));
        _seed = options.Seed ?? throw new ArgumentException("ValidationImageOptions.Seed is not set.", nameof(options));
    }

    /// <summary>The folder the grids go to.</summary>
    public string OutputFolder => _folder;

    /// <summary>The path of the grid of <paramref name="step"/>: <c>&lt;folder&gt;/step_0000100.png</c>.</summary>
    public string PngPath(long step) => Path.Combine(_folder, FormattableString.Invariant($"step_{step:D7}.png"));

    /// <summary>The sampler settings for <paramref name="model"/>: the configured ones, or the default at its largest size (up to 512 px).</summary>
    public ImageGenerationOptions GenerationFor(BagelModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (_options.Generation is { } configured) return configured;
        int perToken = model.Config.VaeConfig!.DownsampleFactor * model.Config.LatentPatchSize;
        int side = Math.Min(model.Config.MaxLatentSize * perToken, ValidationImageOptions.DefaultMaxSide / perToken * perToken);
        return ValidationImageOptions.DefaultGeneration(side, side);
    }

    /// <summary>Renders every text-to-image prompt with <paramref name="model"/> and writes the grid and its sidecar.</summary>
    /// <param name="model">The weights to render (the EMA copy in training).</param>
    /// <param name="step">Completed steps, for the file names and the sidecar.</param>
    /// <param name="cancellationToken">Stops between sampler steps (nothing is written then).</param>
    /// <returns>What was written.</returns>
    public ValidationImageResult Render(BagelModel model, long step, CancellationToken cancellationToken = default) =>
        RenderGrid(model, step, cancellationToken).Result;

    internal (ValidationImageResult Result, byte[]? Png, int Height, int Width) RenderGrid(BagelModel model, long step, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        long start = Stopwatch.GetTimestamp();
        ImageGenerationOptions generation = GenerationFor(model);
        var ids = _options.Tokenizer.SpecialTokenIds;
        var generator = new BagelGenerator(model, _vae, text => _options.Tokenizer.Tokenizer.Encode(text),
            new GenerationTokenIds(ids.BosTokenId, ids.EosTokenId, ids.StartOfImage, ids.EndOfImage));

        var skipped = _options.Prompts.Where(p => p.Kind != ValidationPromptKind.TextToImage).ToList();
        if (skipped.Count > 0 && !_warnedSkipped)
        {
            _warnedSkipped = true;
            LogSkipped(_logger, skipped.Count(p => p.Kind == ValidationPromptKind.Edit), skipped.Count(p => p.Kind == ValidationPromptKind.Question));
        }

        var images = new List<(int Index, ValidationPrompt Prompt, torch.Tensor Pixels)>();
        byte[] generatorState = TorchGlobalRandom.GetState();
        List<(torch.nn.Module Module, bool Training)> modes = [.. Modes(model), .. Modes(_vae)];
        try
        {
            model.eval();
            _vae.eval();
            using var noGrad = torch.no_grad();
            for (int i = 0; i < _options.Prompts.Count; i++)
            {
                ValidationPrompt prompt = _options.Prompts[i];
                if (prompt.Kind != ValidationPromptKind.TextToImage) continue;
                cancellationToken.ThrowIfCancellationRequested();
                using var noise = SeededRandomSource.ForPurpose(_seed, NoisePurpose, worker: i);
                images.Add((i, prompt, generator.TextToImage(prompt.Text, generation, noise, cancellationToken)));
            }

            byte[]? png = null;
            int height = 0, width = 0;
            string? pngPath = null;
            if (images.Count > 0)
            {
                (png, height, width) = ValidationImageGrid.Encode([.. images.Select(x => new ValidationGridCell(x.Pixels, x.Prompt.Text))]);
                pngPath = PngPath(step);
                Directory.CreateDirectory(_folder);
                CheckpointFiles.WriteBytesAtomic(pngPath, png);
            }
            string sidecar = Path.ChangeExtension(PngPath(step), ".json");
            Directory.CreateDirectory(_folder);
            CheckpointFiles.WriteBytesAtomic(sidecar, Sidecar(step, generation, images.Select(x => (x.Index, x.Prompt)).ToList(), skipped, pngPath));
            var result = new ValidationImageResult(step, pngPath, sidecar, images.Count, skipped.Count, Stopwatch.GetElapsedTime(start));
            return (result, png, height, width);
        }
        finally
        {
            foreach (var image in images) image.Pixels.Dispose();
            foreach ((torch.nn.Module module, bool training) in modes) module.train(training);
            TorchGlobalRandom.SetState(generatorState);
        }
    }

    private byte[] Sidecar(long step, ImageGenerationOptions g, List<(int Index, ValidationPrompt Prompt)> rendered, List<ValidationPrompt> skipped, string? png)
    {
        int columns = Math.Min(ValidationImageGrid.MaxColumns, Math.Max(1, rendered.Count));
        var json = new JsonObject
        {
            ["step"] = step,
            ["grid"] = png is null ? null : Path.GetFileName(png),
            ["weights"] = _options.UseEma ? "ema" : "model",
            ["seed"] = _seed,
            ["noise"] = $"SeededRandomSource.ForPurpose(seed, \"{NoisePurpose}\", worker: entry index)",
            ["height"] = g.Height,
            ["width"] = g.Width,
            ["num_timesteps"] = g.NumTimesteps,
            ["timestep_shift"] = g.TimestepShift,
            ["cfg_text_scale"] = g.CfgTextScale,
            ["cfg_img_scale"] = g.CfgImgScale,
            ["cfg_interval"] = new JsonArray(g.CfgInterval.Lo, g.CfgInterval.Hi),
            ["cfg_renorm_type"] = g.CfgRenormType.ToString(),
            ["cfg_renorm_min"] = g.CfgRenormMin,
            ["images"] = new JsonArray([.. rendered.Select((r, k) => (JsonNode)new JsonObject
            {
                ["entry"] = r.Index, ["kind"] = r.Prompt.KindName, ["text"] = r.Prompt.Text, ["row"] = k / columns, ["column"] = k % columns,
            })]),
            ["skipped"] = new JsonArray([.. skipped.Select(s => (JsonNode)new JsonObject
            {
                ["kind"] = s.KindName, ["text"] = s.Text, ["image"] = s.ImagePath,
                ["reason"] = "unfinished: the generator has no image editing or VLM answering in this build",
            })]),
        };
        return System.Text.Encoding.UTF8.GetBytes(json.ToJsonString(SidecarJson) + "\n");
    }

    private static readonly JsonSerializerOptions SidecarJson = new() { WriteIndented = true };

    private static IEnumerable<(torch.nn.Module, bool)> Modes(torch.nn.Module root) =>
        [(root, root.training), .. root.named_modules().Select(m => (m.module, m.module.training))];

    [LoggerMessage(Level = LogLevel.Warning, Message = "Validation images: {Edits} edit and {Questions} question entries are skipped; image editing and VLM answering are not in the generator yet (unfinished). Text-to-image prompts are rendered.")]
    private static partial void LogSkipped(ILogger logger, int edits, int questions);
}
