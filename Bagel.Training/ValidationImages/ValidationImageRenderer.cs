using System.Diagnostics;
using Bagel.Core.Randomness;
using Bagel.Data.Images;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Training.Checkpoints;
using Bagel.Training.Inference;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Bagel.Training.ValidationImages;

/// <summary>
/// Renders the validation entries with a BAGEL model into <c>step_NNNNNNN.png</c> (the grid),
/// <c>step_NNNNNNN_answers.txt</c> (the questions' answers) and <c>step_NNNNNNN.json</c> (entries, answers, seed,
/// sampler settings) under the output folder, all written atomically. Text-to-image prompts go through
/// <see cref="BagelGenerator.TextToImage(string, ImageGenerationOptions, IRandomSource, CancellationToken)"/>; edits
/// through <see cref="BagelGenerator.Edit"/> with the picture resized and normalised as the reference's inferencer does
/// (<see cref="InputImageTransforms"/>); questions through <see cref="BagelGenerator.Understand"/> (greedy by default).
/// The render leaves no trace in training: no gradients, every module's train/eval flag and torch's global generator
/// are put back, and every draw of entry i (an edit's posterior noise, the initial noise, sampled answer tokens) comes
/// from its own <see cref="SeededRandomSource"/> (<see cref="NoisePurpose"/>/i of the seed), so the same weights always
/// give the same grid.
/// </summary>
public sealed partial class ValidationImageRenderer
{
    /// <summary>The purpose name the per-entry noise seeds derive from.</summary>
    public const string NoisePurpose = "validation_images";

    private readonly ValidationImageOptions _options;
    private readonly FluxAutoEncoder _vae;
    private readonly ILogger _logger;
    private readonly string _folder;
    private readonly long _seed;
    private readonly HashSet<int> _warnedSkipped = [];

    /// <summary>Creates the renderer.</summary>
    /// <param name="options">The entries and settings; <see cref="ValidationImageOptions.OutputFolder"/> and
    /// <see cref="ValidationImageOptions.Seed"/> must be set (the trainer fills them from <c>results_dir</c> and <c>global_seed</c>).</param>
    /// <param name="vae">The autoencoder that encodes edit inputs and decodes the latents.</param>
    /// <param name="logger">Receives the warnings about skipped entries; optional.</param>
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

    /// <summary>The path of the answers of <paramref name="step"/>: <c>&lt;folder&gt;/step_0000100_answers.txt</c>.</summary>
    public string AnswersPath(long step) => Path.Combine(_folder, FormattableString.Invariant($"step_{step:D7}_answers.txt"));

    /// <summary>The sampler settings for <paramref name="model"/>: the configured ones, or the default at its largest size (up to 512 px).</summary>
    public ImageGenerationOptions GenerationFor(BagelModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (_options.Generation is { } configured) return configured;
        int perToken = model.Config.VaeConfig!.DownsampleFactor * model.Config.LatentPatchSize;
        int side = Math.Min(model.Config.MaxLatentSize * perToken, ValidationImageOptions.DefaultMaxSide / perToken * perToken);
        return ValidationImageOptions.DefaultGeneration(side, side);
    }

    /// <summary>The answering settings: the configured ones, or <see cref="ValidationImageOptions.DefaultTextGeneration"/>.</summary>
    public TextGenerationOptions TextGeneration => _options.TextGeneration ?? ValidationImageOptions.DefaultTextGeneration;

    /// <summary>The input-picture transforms for <paramref name="model"/>: the configured ones, or the inferencer's
    /// with the VAE side capped at what the model generates.</summary>
    public InputImageTransforms TransformsFor(BagelModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return InputImageTransforms.For(model.Config, _options.VaeTransform, _options.VitTransform, InputImageTransforms.ReferenceVae, InputImageTransforms.ReferenceVit);
    }

    /// <summary>Renders every entry with <paramref name="model"/> and writes the grid, the answers and the sidecar.</summary>
    /// <param name="model">The weights to render (the EMA copy in training).</param>
    /// <param name="step">Completed steps, for the file names and the sidecar.</param>
    /// <param name="cancellationToken">Stops between sampler steps and decoded tokens (nothing is written then).</param>
    /// <returns>What was written.</returns>
    public ValidationImageResult Render(BagelModel model, long step, CancellationToken cancellationToken = default) =>
        RenderGrid(model, step, cancellationToken).Result;

    /// <summary>Renders as <see cref="Render"/>; <paramref name="alsoEval"/> are modules outside the model that its forward
    /// runs through (LoRA adapters), put in eval mode for the render and restored after.</summary>
    internal (ValidationImageResult Result, byte[]? Png, int Height, int Width) RenderGrid(BagelModel model, long step, CancellationToken cancellationToken,
        IReadOnlyList<torch.nn.Module>? alsoEval = null, bool write = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        long start = Stopwatch.GetTimestamp();
        ImageGenerationOptions generation = GenerationFor(model);
        InputImageTransforms transforms = TransformsFor(model);
        var tokenizer = _options.Tokenizer.Tokenizer;
        var ids = _options.Tokenizer.SpecialTokenIds;
        var generator = new BagelGenerator(model, _vae, text => tokenizer.Encode(text), tokens => tokenizer.Decode([.. tokens]),
            new GenerationTokenIds(ids.BosTokenId, ids.EosTokenId, ids.StartOfImage, ids.EndOfImage));

        var outcomes = new List<ValidationEntryOutcome>();
        byte[] generatorState = TorchGlobalRandom.GetState();
        // Outside modules first: an attached LoRA set's train() also sets its base model, whose own flags come after.
        List<(torch.nn.Module Module, bool Training)> modes = [.. (alsoEval ?? []).SelectMany(Modes), .. Modes(model), .. Modes(_vae)];
        try
        {
            foreach (torch.nn.Module module in alsoEval ?? []) module.eval();
            model.eval();
            _vae.eval();
            using var noGrad = torch.no_grad();
            for (int i = 0; i < _options.Prompts.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var noise = SeededRandomSource.ForPurpose(_seed, NoisePurpose, worker: i);
                ValidationEntryOutcome outcome = RenderEntry(i, _options.Prompts[i], generator, model, generation, transforms, noise, cancellationToken);
                outcomes.Add(outcome);
                if (write && outcome.Skipped is { } reason && _warnedSkipped.Add(i))
                    LogSkipped(_logger, outcome.Prompt.Source ?? $"entry {i}", outcome.Prompt.KindName, reason);
            }

            if (!write) // the same forwards as the writing rank (parameter sharding), nothing written
                return (new ValidationImageResult(step, null, "", 0, 0, 0, null, Stopwatch.GetElapsedTime(start)), null, 0, 0);
            List<ValidationEntryOutcome> cells = [.. outcomes.Where(o => o.Pixels is not null)];
            List<ValidationEntryOutcome> answers = [.. outcomes.Where(o => o.Answer is not null)];
            byte[]? png = null;
            int height = 0, width = 0;
            string? pngPath = null, answersPath = null;
            Directory.CreateDirectory(_folder);
            if (cells.Count > 0)
            {
                (png, height, width) = ValidationImageGrid.Encode([.. cells.Select(c => new ValidationGridCell(c.Pixels!, c.Caption, c.Input))]);
                pngPath = PngPath(step);
                CheckpointFiles.WriteBytesAtomic(pngPath, png);
            }
            if (answers.Count > 0)
            {
                answersPath = AnswersPath(step);
                CheckpointFiles.WriteBytesAtomic(answersPath, ValidationImageSidecar.Answers(step, _options.UseEma ? "EMA" : "model", TextGeneration, answers));
            }
            string sidecar = Path.ChangeExtension(PngPath(step), ".json");
            var context = new SidecarContext(step, _options.UseEma ? "ema" : "model", _seed, NoisePurpose, generation, TextGeneration, transforms, pngPath, answersPath);
            CheckpointFiles.WriteBytesAtomic(sidecar, ValidationImageSidecar.Write(context, cells, outcomes));
            int images = cells.Count(c => c.Prompt.Kind != ValidationPromptKind.Question);
            var result = new ValidationImageResult(step, pngPath, sidecar, images, answers.Count, outcomes.Count(o => o.Skipped is not null), answersPath,
                Stopwatch.GetElapsedTime(start));
            return (result, png, height, width);
        }
        finally
        {
            foreach (ValidationEntryOutcome outcome in outcomes)
            {
                outcome.Pixels?.Dispose();
                outcome.Input?.Dispose();
            }
            foreach ((torch.nn.Module module, bool training) in modes) module.train(training);
            TorchGlobalRandom.SetState(generatorState);
        }
    }

    private ValidationEntryOutcome RenderEntry(int index, ValidationPrompt prompt, BagelGenerator generator, BagelModel model, ImageGenerationOptions generation,
        InputImageTransforms transforms, IRandomSource noise, CancellationToken cancellationToken)
    {
        if (prompt.Kind == ValidationPromptKind.TextToImage)
            return new ValidationEntryOutcome(index, prompt, Pixels: generator.TextToImage(prompt.Text, generation, noise, cancellationToken));
        if (prompt.Kind == ValidationPromptKind.Question && (model.VitModel is null || transforms.Vit is null))
            return new ValidationEntryOutcome(index, prompt, Skipped: "the model has no understanding branch (visual_und), so it cannot read the picture");
        RgbImage picture;
        try
        {
            picture = new ImageDecoder().DecodeFile(prompt.ImagePath ?? throw new IOException($"a {prompt.KindName} entry has no image path"));
        }
        catch (Exception e) when (e is ImageDecodeException or IOException or UnauthorizedAccessException)
        {
            return new ValidationEntryOutcome(index, prompt, Skipped: $"its image {prompt.ImagePath} cannot be read: {e.Message}");
        }
        IReadOnlyList<int> text = _options.Tokenizer.Tokenizer.Encode(prompt.Text);
        using var scope = torch.NewDisposeScope();
        RgbImage resized = transforms.Resize(picture);
        if (prompt.Kind == ValidationPromptKind.Edit)
        {
            ContextImage input = transforms.Prepare(picture, vae: true);
            torch.Tensor edited = generator.Edit(input, text, generation, noise, null, cancellationToken);
            return new ValidationEntryOutcome(index, prompt, Pixels: edited.MoveToOuterDisposeScope(), Input: Pixels(resized).MoveToOuterDisposeScope());
        }
        ContextImage seen = transforms.Prepare(picture, vae: false);
        IReadOnlyList<int> answer = generator.Understand([new InterleaveInput.Image(seen), new InterleaveInput.Text(text)], TextGeneration, noise,
            think: false, onStep: null, cancellationToken);
        // Shown as the ViT saw it: the VAE transform's resize, then the ViT transform's.
        return new ValidationEntryOutcome(index, prompt, Pixels: Pixels(transforms.Vit!.Resize(resized)).MoveToOuterDisposeScope(),
            Answer: generator.DecodeAnswer(answer));
    }

    /// <summary>An RGB image as [H, W, 3] uint8 (the grid's cell format).</summary>
    private static torch.Tensor Pixels(RgbImage image) => torch.tensor(image.Pixels, [image.Height, image.Width, 3], torch.ScalarType.Byte);

    private static IEnumerable<(torch.nn.Module, bool)> Modes(torch.nn.Module root) =>
        [(root, root.training), .. root.named_modules().Select(m => (m.module, m.module.training))];

    [LoggerMessage(Level = LogLevel.Warning, Message = "Validation images: {Source} ({Kind}) is skipped: {Reason}. The other entries are rendered.")]
    private static partial void LogSkipped(ILogger logger, string source, string kind, string reason);
}
