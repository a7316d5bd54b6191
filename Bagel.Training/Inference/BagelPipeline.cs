using System.Globalization;
using Bagel.Core.Randomness;
using Bagel.Data.Images;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Generation;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using Bagel.Training.Checkpoints;
using Bagel.Training.Options;
using Bagel.Training.Recipes;
using Microsoft.Extensions.Logging;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Training.Inference;

/// <summary>The problem that stops a model folder from loading; the message names the file or value.</summary>
public sealed class GenerationLoadException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="inner">The cause, if any.</param>
    public GenerationLoadException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// A BAGEL model ready to generate: loaded from a checkpoint folder a training run wrote (a step folder with
/// <c>run_info.json</c>, or the run's <c>checkpoints</c> folder or results folder, whose latest checkpoint is taken) or
/// from a released BAGEL folder (<c>llm_config.json</c>, <c>vit_config.json</c>, <c>ae.safetensors</c>, the Qwen2
/// tokenizer files and <c>ema.safetensors</c>), with its tokenizer, VAE and the inferencer's image transforms.
/// Text-to-image, editing and answering take strings and <see cref="RgbImage"/>s; the lower-level
/// <see cref="Generator"/> takes token ids and tensors.
/// </summary>
/// <remarks>
/// The tiny preset does not save its VAE (it is random and frozen): the loader rebuilds it as the preset does
/// (<c>torch.manual_seed(0)</c>, the composite, then the autoencoder), restoring the global torch generator afterwards.
/// The tokenizer of a tiny-preset checkpoint is the one the preset saved in <c>&lt;results&gt;/tokenizer</c>.
/// </remarks>
public sealed partial class BagelPipeline : IDisposable
{
    private BagelPipeline(BagelModel model, FluxAutoEncoder vae, BagelTokenizerSetup tokenizer, InputImageTransforms transforms,
        string weightsFile, string description)
    {
        Model = model;
        Vae = vae;
        Tokenizer = tokenizer;
        InputTransforms = transforms;
        WeightsFile = weightsFile;
        Description = description;
        BagelSpecialTokenIds ids = tokenizer.SpecialTokenIds;
        Generator = new BagelGenerator(model, vae, text => tokenizer.Tokenizer.Encode(text),
            ids2 => tokenizer.Tokenizer.Decode([.. ids2]),
            new GenerationTokenIds(ids.BosTokenId, ids.EosTokenId, ids.StartOfImage, ids.EndOfImage));
    }

    /// <summary>The model (in eval mode).</summary>
    public BagelModel Model { get; }

    /// <summary>The autoencoder.</summary>
    public FluxAutoEncoder Vae { get; }

    /// <summary>The tokenizer with BAGEL's special tokens.</summary>
    public BagelTokenizerSetup Tokenizer { get; }

    /// <summary>The transforms of input images (the VAE resize, then each stream's transform).</summary>
    public InputImageTransforms InputTransforms { get; }

    /// <summary>The VAE-stream transform of input images.</summary>
    public ImageTransform VaeTransform => InputTransforms.Vae;

    /// <summary>The ViT-stream transform; null without an understanding branch.</summary>
    public ImageTransform? VitTransform => InputTransforms.Vit;

    /// <summary>The weights file loaded.</summary>
    public string WeightsFile { get; }

    /// <summary>One line: what was loaded from where.</summary>
    public string Description { get; }

    /// <summary>The token-level generator.</summary>
    public BagelGenerator Generator { get; }

    /// <summary>Pixels per latent token side; generated sizes are multiples of it.</summary>
    public int SizeMultiple => Generator.LatentDownsample;

    /// <summary>The largest image side the model can generate (<c>max_latent_size</c> tokens).</summary>
    public int MaxImageSide => Model.Config.MaxLatentSize * SizeMultiple;

    /// <summary>Loads a model folder (see the class remarks for the layouts).</summary>
    /// <param name="folder">A checkpoint step folder, a run's checkpoints or results folder, or a released BAGEL folder.</param>
    /// <param name="options">Weights choice, transforms, logging; default EMA.</param>
    /// <param name="cancellationToken">Stops the weight loads between tensors.</param>
    /// <returns>The pipeline; dispose it.</returns>
    /// <exception cref="GenerationLoadException">The folder is missing, of no known layout, lacks a file, or its weights
    /// do not fit the model its configuration describes; the message names the file.</exception>
    public static BagelPipeline Load(string folder, BagelPipelineOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        options ??= new BagelPipelineOptions();
        string full = Path.GetFullPath(folder);
        if (!Directory.Exists(full)) throw new GenerationLoadException($"Checkpoint folder {full} does not exist.");
        try
        {
            if (ResolveCheckpoint(full) is { } step) return LoadCheckpoint(step, options, cancellationToken);
            if (File.Exists(Path.Combine(full, RecipePaths.LlmConfigFileName))) return LoadRelease(full, options, cancellationToken);
        }
        catch (GenerationLoadException)
        {
            throw;
        }
        catch (Exception e) when (e is BagelCheckpointException or CheckpointException or Bagel.Core.SafeTensors.SafeTensorsFormatException
                                      or Bagel.Core.StateDicts.StateDictMismatchException or Bagel.Core.SafeTensors.SafeTensorNotFoundException or TokenizerFormatException or FluxVaeException
                                      or Qwen2ConfigException or SiglipConfigException or IOException or InvalidDataException or ArgumentException)
        {
            throw new GenerationLoadException(e.Message, e);
        }
        throw new GenerationLoadException(
            $"{full} is not a checkpoint: it has no {CheckpointLayout.RunInfoFileName} (a training checkpoint), no complete step folder "
            + $"(a checkpoints folder), no checkpoints/ (a results folder) and no {RecipePaths.LlmConfigFileName} (a released BAGEL folder).");
    }

    /// <summary>A step folder, the latest in a checkpoints folder, or the latest in a results folder's checkpoints/.</summary>
    private static string? ResolveCheckpoint(string folder)
    {
        if (File.Exists(Path.Combine(folder, CheckpointLayout.RunInfoFileName))) return folder;
        if (CheckpointCatalog.FindLatest(folder) is { } latest) return latest.Folder;
        string nested = Path.Combine(folder, "checkpoints");
        return Directory.Exists(nested) && CheckpointCatalog.FindLatest(nested) is { } inResults ? inResults.Folder : null;
    }

    private static string WeightsIn(string folder, CheckpointWeights weights)
    {
        string file = Path.Combine(folder, weights == CheckpointWeights.Ema ? CheckpointLayout.EmaFileName : CheckpointLayout.ModelFileName);
        if (!File.Exists(file))
            throw new GenerationLoadException(weights == CheckpointWeights.Ema
                ? $"{file} does not exist (this checkpoint has no EMA weights; use --model for {CheckpointLayout.ModelFileName})."
                : $"{file} does not exist.");
        return file;
    }

    private static BagelPipeline LoadCheckpoint(string step, BagelPipelineOptions options, CancellationToken cancellationToken)
    {
        string runInfoPath = Path.Combine(step, CheckpointLayout.RunInfoFileName);
        if (!File.Exists(runInfoPath)) throw new GenerationLoadException($"{runInfoPath} does not exist; it records how the model was built.");
        RunInfo info = RunInfo.Read(runInfoPath);
        string weights = WeightsIn(step, options.Weights);
        if (info.Model is { } described && described.TryGetValue("preset", out string? preset) && preset == "tiny")
            return LoadTinyPreset(step, info, described, weights, options, cancellationToken);

        // A run built from flags: the same paths and configs as BagelRecipe.
        TrainingConfiguration configuration = info.Configuration;
        RecipePaths paths = RecipePaths.Resolve(configuration);
        ModelOptions model = configuration.Model;
        TrainingOptions training = configuration.Training;
        BagelTokenizerSetup tokenizer = LoadTokenizer(paths.TokenizerFolder, options.Logger, cancellationToken);
        Qwen2Config llm = ReadConfig(paths.LlmConfigFile, Qwen2Config.FromFile) with
        {
            LayerModule = Enum.Parse<Qwen2LayerModule>(model.LayerModule),
            QkNorm = model.LlmQkNorm,
            TieWordEmbeddings = model.TieWordEmbeddings,
        };
        SiglipVisionConfig? vit = paths.VitConfigFile is null ? null
            : ReadConfig(paths.VitConfigFile, SiglipVisionConfig.FromFile).WithBagelOverrides(model.VitSelectLayer) with { Rope = model.VitRope };
        if (paths.VaeFile is null) throw new GenerationLoadException($"{runInfoPath}: the run trained without visual_gen; it cannot generate images.");
        FluxAutoEncoder vae = LoadVae(paths.VaeFile, options.Logger, cancellationToken);
        var config = new BagelConfig
        {
            VisualGen = true,
            VisualUnd = training.VisualUnd,
            LlmConfig = llm,
            VitConfig = vit,
            VaeConfig = vae.Config,
            LatentPatchSize = model.LatentPatchSize,
            MaxLatentSize = model.MaxLatentSize,
            VitMaxNumPatchPerSide = model.VitMaxNumPatchPerSide,
            ConnectorAct = model.ConnectorAct,
            InterpolatePos = model.InterpolatePos,
            TimestepShift = training.TimestepShift,
        };
        return Assemble(config, vae, tokenizer, weights, options, ReleaseVae, ReleaseVit, $"checkpoint {step} ({Path.GetFileName(weights)})", cancellationToken);
    }

    private static BagelPipeline LoadTinyPreset(string step, RunInfo info, IReadOnlyDictionary<string, string> described, string weights,
        BagelPipelineOptions options, CancellationToken cancellationToken)
    {
        string results = info.Configuration.Training.ResultsDir;
        string tokenizerFolder = Path.Combine(results, TinyPreset.TokenizerFolderName);
        if (!Directory.Exists(tokenizerFolder))
            tokenizerFolder = Path.GetFullPath(Path.Combine(step, "..", "..", TinyPreset.TokenizerFolderName));
        if (!Directory.Exists(tokenizerFolder))
            throw new GenerationLoadException($"The tiny preset's tokenizer is not at {Path.Combine(results, TinyPreset.TokenizerFolderName)} nor at {tokenizerFolder}.");
        BagelTokenizerSetup tokenizer = LoadTokenizer(tokenizerFolder, options.Logger, cancellationToken);
        int vocabulary = described.TryGetValue("llm.vocab_size", out string? v) && int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            ? n : tokenizer.Tokenizer.Count;
        BagelConfig config = TinyPreset.ModelConfig(vocabulary);
        // The preset's VAE is random and not saved: rebuild it exactly as TinyPreset.RunAsync draws it.
        FluxAutoEncoder vae;
        using (Tensor state = torch.random.get_rng_state())
        {
            torch.manual_seed(0);
            using (new BagelModel(config)) { }
            vae = new FluxAutoEncoder(config.VaeConfig!);
            torch.random.set_rng_state(state);
        }
        return Assemble(config, vae, tokenizer, weights, options, TinyPreset.VaeImageTransform, TinyPreset.VitImageTransform, $"tiny-preset checkpoint {step} ({Path.GetFileName(weights)})", cancellationToken);
    }

    private static BagelPipeline LoadRelease(string folder, BagelPipelineOptions options, CancellationToken cancellationToken)
    {
        string weights = WeightsIn(folder, options.Weights);
        BagelTokenizerSetup tokenizer = LoadTokenizer(folder, options.Logger, cancellationToken);
        Qwen2Config llm = ReadConfig(Path.Combine(folder, RecipePaths.LlmConfigFileName), Qwen2Config.FromFile).WithBagelOverrides();
        string vitFile = Path.Combine(folder, RecipePaths.VitConfigFileName);
        SiglipVisionConfig? vit = File.Exists(vitFile) ? ReadConfig(vitFile, SiglipVisionConfig.FromFile).WithBagelOverrides() : null;
        string vaeFile = Path.Combine(folder, RecipePaths.VaeFileName);
        if (!File.Exists(vaeFile)) throw new GenerationLoadException($"{vaeFile} does not exist; a released BAGEL folder holds its VAE there.");
        FluxAutoEncoder vae = LoadVae(vaeFile, options.Logger, cancellationToken);
        // The inferencer's model (app.py): latent patch 2, max_latent_size 64, ViT grid 70, connector gelu_pytorch_tanh.
        var config = new BagelConfig
        {
            VisualGen = true,
            VisualUnd = vit is not null,
            LlmConfig = llm,
            VitConfig = vit,
            VaeConfig = vae.Config,
            LatentPatchSize = 2,
            MaxLatentSize = 64,
            VitMaxNumPatchPerSide = 70,
            ConnectorAct = "gelu_pytorch_tanh",
        };
        return Assemble(config, vae, tokenizer, weights, options, ReleaseVae, ReleaseVit, $"released model {folder} ({Path.GetFileName(weights)})", cancellationToken);
    }

    private static readonly ImageTransformOptions ReleaseVae = InputImageTransforms.ReferenceVae;
    private static readonly ImageTransformOptions ReleaseVit = InputImageTransforms.ReferenceVit;

    private static BagelPipeline Assemble(BagelConfig config, FluxAutoEncoder vae, BagelTokenizerSetup tokenizer, string weights,
        BagelPipelineOptions options, ImageTransformOptions vaeDefault, ImageTransformOptions vitDefault, string description, CancellationToken cancellationToken)
    {
        BagelModel? model = null;
        try
        {
            if (tokenizer.Tokenizer.Count > config.LlmConfig.VocabSize)
                throw new GenerationLoadException(
                    $"The tokenizer has {tokenizer.Tokenizer.Count} ids but the model's vocab_size is {config.LlmConfig.VocabSize}; they do not belong together.");
            model = new BagelModel(config);
            BagelCheckpointLoader.LoadBagel(model, weights, options.Logger, cancellationToken);
            model.eval();
            vae.eval();
            InputImageTransforms transforms = InputImageTransforms.For(config, options.VaeTransform, options.VitTransform, vaeDefault, vitDefault);
            return new BagelPipeline(model, vae, tokenizer, transforms, weights, description);
        }
        catch
        {
            model?.Dispose();
            vae.Dispose();
            throw;
        }
    }

    private static BagelTokenizerSetup LoadTokenizer(string folder, ILogger? logger, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(folder)) throw new GenerationLoadException($"Tokenizer folder {folder} does not exist.");
        return BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(folder, logger, cancellationToken));
    }

    private static FluxAutoEncoder LoadVae(string file, ILogger? logger, CancellationToken cancellationToken)
    {
        if (!File.Exists(file)) throw new GenerationLoadException($"VAE weights {file} do not exist.");
        return FluxAutoEncoder.Load(file, FluxVaeShape.Infer(file), logger, cancellationToken);
    }

    private static T ReadConfig<T>(string file, Func<string, T> read)
    {
        if (!File.Exists(file)) throw new GenerationLoadException($"Config {file} does not exist.");
        return read(file);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Model.Dispose();
        Vae.Dispose();
    }
}
