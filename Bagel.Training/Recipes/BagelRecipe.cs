using Bagel.Core.Randomness;
using Bagel.Core.StateDicts;
using Bagel.Data.Config;
using Bagel.Data.Pipeline;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using Bagel.Training.Options;
using Bagel.Training.Validation;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bagel.Training.Recipes;

/// <summary>
/// Turns the reference's flags into a ready run, in the reference's startup order (training.md 5.2). The flags pick the
/// recipe: without <c>finetune_from_hf</c> it pre-trains from parts (Qwen2 from <c>llm_path</c>, SigLIP from
/// <c>vit_path</c>, FLUX VAE from <c>vae_path</c>, gen experts copied from their und twins with <c>copy_init_moe</c>);
/// with it, it fine-tunes a release (configs, tokenizer and <c>ae.safetensors</c> from <c>model_path</c>, a randomly
/// initialised model whose weights the trainer then restores from <c>resume_from</c>). <c>visual_und=False</c> gives
/// T2I-only (no ViT, no <c>vit_path</c>), <c>visual_gen=False</c> VLM-only (no VAE, <c>vae_path</c> not read).
/// </summary>
public static partial class BagelRecipe
{
    /// <summary>Checks the flags, the files they name and the data groups against the branches; every problem at once.</summary>
    /// <returns>The resolved paths.</returns>
    /// <exception cref="InvalidTrainingOptionsException">Listing every bad flag value, missing file and unusable group.</exception>
    public static RecipePaths Validate(TrainingConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var failures = new List<string>(configuration.Validate());
        RecipePaths paths = RecipePaths.Resolve(configuration);
        failures.AddRange(paths.Check(configuration));
        if (File.Exists(paths.DatasetConfigFile) && File.Exists(paths.DatasetInfoFile))
        {
            try
            {
                failures.AddRange(CheckGroups(LoadMix(paths), configuration.Training));
            }
            catch (Exception e) when (e is DataConfigException or DataConfigAggregateException)
            {
                failures.Add($"'dataset_config_file' {paths.DatasetConfigFile} / 'dataset_info_file' {paths.DatasetInfoFile}: {e.Message}");
            }
        }
        failures.AddRange(CheckValidationPrompts(configuration.Training));
        return failures.Count == 0 ? paths : throw new InvalidTrainingOptionsException(failures);
    }

    /// <summary>
    /// Builds the run: validate, seed (<c>global_seed</c>), tokenizer + special tokens, LLM config (with
    /// <c>layer_module</c>, <c>llm_qk_norm</c>, <c>tie_word_embeddings</c>, <c>freeze_und</c>), ViT config (with
    /// <c>vit_select_layer</c>, <c>vit_rope</c>), VAE, the composite (<c>max_latent_size</c>, <c>latent_patch_size</c>,
    /// <c>vit_max_num_patch_per_side</c>, <c>connector_act</c>, <c>interpolate_pos</c>, <c>timestep_shift</c>), the part
    /// weights, the freezes and the data pipeline (<c>num_workers</c>, <c>prefetch_factor</c>, <c>data_seed</c>, the
    /// token budgets). The VAE is always frozen (<c>freeze_vae</c> only says so, as the reference never trains it).
    /// </summary>
    /// <param name="configuration">The flags.</param>
    /// <param name="loggerFactory">Where the startup is logged (default nowhere).</param>
    /// <param name="cancellationToken">Stops the loads between tensors and files.</param>
    /// <exception cref="InvalidTrainingOptionsException">See <see cref="Validate"/>.</exception>
    public static async Task<BagelRun> BuildAsync(TrainingConfiguration configuration, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        RecipePaths paths = Validate(configuration);
        ILogger log = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger(typeof(BagelRecipe).FullName!);
        (ModelOptions model, DataOptions data, TrainingOptions training) = (configuration.Model, configuration.Data, configuration.Training);
        string description = Describe(training);
        LogRecipe(log, description);
        if (training.UseFlex) LogUseFlex(log);
        if (training.VisualGen && !training.FreezeVae) LogVaeAlwaysFrozen(log);

        // Startup step 3: the per-rank seed before anything draws random numbers (rank 0's weights are broadcast later).
        var group = Distributed.DistributedRun.Current;
        TorchGlobalRandom.Seed(SeedDerivation.ReferenceRankSeed(training.GlobalSeed, group.WorldSize, group.Rank), group.Rank, log);
        BagelTokenizerSetup tokenizer = BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(paths.TokenizerFolder, log, cancellationToken));
        Qwen2Config llm = Qwen2Config.FromFile(paths.LlmConfigFile) with
        {
            LayerModule = Enum.Parse<Qwen2LayerModule>(model.LayerModule),
            QkNorm = model.LlmQkNorm,
            TieWordEmbeddings = model.TieWordEmbeddings,
            FreezeUnd = training.FreezeUnd,
        };
        SiglipVisionConfig? vit = paths.VitConfigFile is null ? null
            : SiglipVisionConfig.FromFile(paths.VitConfigFile).WithBagelOverrides(model.VitSelectLayer) with { Rope = model.VitRope };
        CheckSizes(tokenizer, llm, vit, model, paths);

        FluxAutoEncoder? vae = null;
        BagelModel? bagel = null;
        ValidationSet? validation = null;
        try
        {
            if (paths.VaeFile is not null)
            {
                FluxVaeConfig shape = FluxVaeShape.Infer(paths.VaeFile);
                if (shape.DownsampleFactor != DataWiring.VaeDownsample)
                    throw new InvalidTrainingOptionsException([$"'vae_path' {paths.VaeFile} downsamples by {shape.DownsampleFactor}; the data pipeline's vae_image_downsample assumes FLUX's {DataWiring.VaeDownsample}."]);
                vae = FluxAutoEncoder.Load(paths.VaeFile, shape, log, cancellationToken);
            }
            var config = new BagelConfig
            {
                VisualGen = training.VisualGen,
                VisualUnd = training.VisualUnd,
                LlmConfig = llm,
                VitConfig = vit,
                VaeConfig = vae?.Config,
                LatentPatchSize = model.LatentPatchSize,
                MaxLatentSize = model.MaxLatentSize,
                VitMaxNumPatchPerSide = model.VitMaxNumPatchPerSide,
                ConnectorAct = model.ConnectorAct,
                InterpolatePos = model.InterpolatePos,
                TimestepShift = training.TimestepShift,
            };
            bagel = new BagelModel(config);
            IReadOnlyList<StateDictLoadReport> reports = [];
            if (paths.LlmWeights is not null)
                reports = BagelCheckpointLoader.LoadParts(bagel, paths.LlmWeights, paths.VitWeights, training.CopyInitMoe, log, cancellationToken);
            else if (training.CopyInitMoe)
                Qwen2Initialization.CopyUnderstandingToGeneration(bagel.LanguageModel); // as the reference, on the random init too
            if (training.FreezeLlm) bagel.FreezeLanguageModel();
            if (training.FreezeVit) bagel.FreezeVit();
            long trainable = Bagel.Training.Lora.LoraFlags.Enabled(training) // under LoRA only the adapters train
                ? Bagel.Models.Lora.LoraAdapterSet.CountParameters(bagel, Bagel.Training.Lora.LoraFlags.ToOptions(training))
                : bagel.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
            LogModel(log, bagel.parameters().Sum(p => p.numel()), trainable);

            DataPipelineOptions pipelineOptions = DataWiring.ToPipelineOptions(configuration);
            var factory = new DataPipelineFactory(tokenizer, pipelineOptions, modelLimits: DataWiring.ToModelImageLimits(configuration), logger: log);
            DatasetInfoRegistry registry = DatasetInfoRegistry.Load(paths.DatasetInfoFile);
            DataPipeline pipeline = await factory.CreateAsync(registry, DatasetMixConfig.Load(paths.DatasetConfigFile, registry), cancellationToken: cancellationToken).ConfigureAwait(false);
            // The held-out set is small: one worker reads each group, so it needs one data unit per group, not one per training worker.
            var validationFactory = new DataPipelineFactory(tokenizer, pipelineOptions with { NumWorkers = 1, Rank = 0, WorldSize = 1 }, modelLimits: DataWiring.ToModelImageLimits(configuration), logger: log);
            validation = await ValidationSetFactory.CreateFromOptionsAsync(validationFactory, paths.DatasetInfoFile, training, cancellationToken).ConfigureAwait(false);
            return new BagelRun(configuration, paths, description, tokenizer, bagel, vae, pipeline, reports, validation);
        }
        catch
        {
            bagel?.Dispose();
            vae?.Dispose();
            validation?.Dispose();
            throw;
        }
    }

    /// <summary>One line naming the recipe the flags select.</summary>
    public static string Describe(TrainingOptions training)
    {
        ArgumentNullException.ThrowIfNull(training);
        string recipe = training.FinetuneFromHf
            ? "fine-tuning a BAGEL release (configs, tokenizer and VAE from model_path; weights from resume_from)"
            : "pre-training from parts (llm_path, vit_path, vae_path)";
        string tasks = (training.VisualGen, training.VisualUnd) switch
        {
            (true, true) => "generation and understanding",
            (true, false) => "T2I-only (visual_und off: no ViT)",
            (false, true) => "VLM-only (visual_gen off: no VAE)",
            _ => "text only (visual_gen and visual_und off)",
        };
        return $"Recipe: {recipe}, {tasks}.";
    }

    private static DatasetMixConfig LoadMix(RecipePaths paths) =>
        DatasetMixConfig.Load(paths.DatasetConfigFile, DatasetInfoRegistry.Load(paths.DatasetInfoFile));

    /// <summary>The problems of <c>validation_prompts</c>: an unreadable or bad file, or no generation branch to render with.</summary>
    private static IEnumerable<string> CheckValidationPrompts(TrainingOptions training)
    {
        if (string.IsNullOrWhiteSpace(training.ValidationPrompts)) yield break;
        string? problem = null;
        try
        {
            ValidationImages.ValidationPromptFile.Load(training.ValidationPrompts);
        }
        catch (ValidationImages.ValidationPromptException e)
        {
            problem = $"'validation_prompts': {e.Message}";
        }
        if (problem is not null) yield return problem;
        if (!training.VisualGen) yield return "'validation_prompts' renders images, but visual_gen is off; drop it for a VLM-only run.";
    }

    /// <summary>Groups whose samples need a branch that is off (the reference would crash in the forward pass).</summary>
    private static IEnumerable<string> CheckGroups(DatasetMixConfig mix, TrainingOptions training)
    {
        foreach (DatasetGroupConfig group in mix.Groups)
        {
            bool needsGen = group.Name is DatasetGroupKinds.T2IPretrain or DatasetGroupKinds.T2IImageFolder or DatasetGroupKinds.UnifiedEdit;
            bool needsUnd = group.Name is DatasetGroupKinds.VlmSft or DatasetGroupKinds.UnifiedEdit;
            if (needsGen && !training.VisualGen)
                yield return $"'dataset_config_file' {mix.SourceFile}: group '{group.Name}' trains image generation, but visual_gen is off; remove the group for a VLM-only run.";
            if (needsUnd && !training.VisualUnd)
                yield return $"'dataset_config_file' {mix.SourceFile}: group '{group.Name}' needs the ViT, but visual_und is off; remove the group for a T2I-only run.";
        }
    }

    private static void CheckSizes(BagelTokenizerSetup tokenizer, Qwen2Config llm, SiglipVisionConfig? vit, ModelOptions model, RecipePaths paths)
    {
        var failures = new List<string>();
        // Unfinished: the reference resizes the embeddings when the special tokens are new (resize_token_embeddings);
        // Qwen2.5 folders already hold them, so a tokenizer larger than the model is reported instead.
        if (tokenizer.Tokenizer.Count > llm.VocabSize)
            failures.Add($"The tokenizer in {paths.TokenizerFolder} has {tokenizer.Tokenizer.Count} tokens but {paths.LlmConfigFile} has vocab_size {llm.VocabSize}; resizing the embeddings is not supported, use a tokenizer that fits the model.");
        if (vit is not null && vit.PatchSize != model.VitPatchSize)
            failures.Add($"'vit_patch_size' {model.VitPatchSize} differs from patch_size {vit.PatchSize} in {paths.VitConfigFile}; the data would cut patches the ViT cannot read.");
        if (failures.Count > 0) throw new InvalidTrainingOptionsException(failures);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Description}")]
    private static partial void LogRecipe(ILogger logger, string description);

    [LoggerMessage(Level = LogLevel.Information, Message = "use_flex selects nothing numerically different here: packed attention always runs per sample with scaled dot-product attention (the reference's flex path computes the same masks).")]
    private static partial void LogUseFlex(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "freeze_vae is off, but the VAE stays frozen: the reference never puts it in the optimizer either.")]
    private static partial void LogVaeAlwaysFrozen(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model: {Parameters:N0} parameters, {Trainable:N0} trainable.")]
    private static partial void LogModel(ILogger logger, long parameters, long trainable);
}
