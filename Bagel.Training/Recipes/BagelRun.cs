using Bagel.Core.StateDicts;
using Bagel.Data.Pipeline;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Training.Metrics;
using Bagel.Training.Models;
using Bagel.Training.Options;
using Bagel.Training.Validation;

namespace Bagel.Training.Recipes;

/// <summary>
/// A run ready to train, built by <see cref="BagelRecipe.BuildAsync"/>: the composite with its weights (from parts, or
/// random until the trainer restores <c>resume_from</c>), the frozen VAE, the tokenizer and the data pipeline. Hand it
/// to a trainer with <see cref="TrainerBuilderRecipeExtensions.UseRecipe"/>. Disposing it disposes the model and the
/// VAE (the trainer owns and disposes the EMA twin it creates).
/// </summary>
public sealed class BagelRun : IDisposable
{
    internal BagelRun(TrainingConfiguration configuration, RecipePaths paths, string description, BagelTokenizerSetup tokenizer,
        BagelModel model, FluxAutoEncoder? vae, DataPipeline pipeline, IReadOnlyList<StateDictLoadReport> loadReports,
        ValidationSet? validation)
    {
        Configuration = configuration;
        Paths = paths;
        Description = description;
        Tokenizer = tokenizer;
        Model = model;
        Vae = vae;
        Pipeline = pipeline;
        LoadReports = loadReports;
        Validation = validation;
        TrainingModel = new BagelTrainingModel(model, vae, () => new BagelModel(model.Config));
        var llm = model.Config.LlmConfig;
        FlopConfig = new Qwen2FlopConfig(llm.HiddenSize, llm.IntermediateSize, llm.NumHiddenLayers, llm.NumAttentionHeads, llm.NumKeyValueHeads, llm.VocabSize);
    }

    /// <summary>The validated flags the run was built from.</summary>
    public TrainingConfiguration Configuration { get; }

    /// <summary>Where each artifact was read from.</summary>
    public RecipePaths Paths { get; }

    /// <summary>One line naming the recipe (pre-training from parts or fine-tuning from a release) and the branches on.</summary>
    public string Description { get; }

    /// <summary>The Qwen2 tokenizer with BAGEL's special tokens.</summary>
    public BagelTokenizerSetup Tokenizer { get; }

    /// <summary>The composite being trained.</summary>
    public BagelModel Model { get; }

    /// <summary>The frozen FLUX autoencoder; null without <c>visual_gen</c>.</summary>
    public FluxAutoEncoder? Vae { get; }

    /// <summary>The packed-batch pipeline over <c>dataset_config_file</c>.</summary>
    public DataPipeline Pipeline { get; }

    /// <summary>The trainer's view of the model (VAE encode + composite forward; the EMA twin is a fresh composite).</summary>
    public BagelTrainingModel TrainingModel { get; }

    /// <summary>The language model's sizes for the FLOP count and MFU.</summary>
    public Qwen2FlopConfig FlopConfig { get; }

    /// <summary>The part loads (LLM, then SigLIP) when pre-training from parts; empty with <c>finetune_from_hf</c>.</summary>
    public IReadOnlyList<StateDictLoadReport> LoadReports { get; }

    /// <summary>The held-out validation set of <c>validation_config_file</c> (<c>validation_batches</c> per group); null when off.</summary>
    public ValidationSet? Validation { get; }

    /// <summary>Disposes the model, the VAE and the validation set.</summary>
    public void Dispose()
    {
        Model.Dispose();
        Vae?.Dispose();
        Validation?.Dispose();
    }
}
