using System.Globalization;
using Bagel.Data.Example;
using Bagel.Data.Pipeline;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using Bagel.Core.Distributed;
using Bagel.Training.Checkpoints;
using Bagel.Training.Distributed;
using Bagel.Training.Logging;
using Bagel.Training.Loop;
using Bagel.Training.Metrics;
using Bagel.Training.Models;
using Bagel.Training.Options;
using Bagel.Training.ValidationImages;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Training.Recipes;

/// <summary>What <see cref="TinyPreset.RunAsync"/> does; the defaults are the console app's run.</summary>
public sealed record TinyPresetOptions
{
    /// <summary>The run's folder: checkpoints, <c>metrics.jsonl</c>, <c>log.txt</c>, <c>tensorboard/</c>, the example data and the tokenizer. Default <c>results/tiny-preset</c>.</summary>
    public string ResultsDir { get; init; } = Path.Combine("results", "tiny-preset");

    /// <summary>Optimizer steps of the whole run (a rerun continues towards the same number). Default 300.</summary>
    public int TotalSteps { get; init; } = 300;

    /// <summary>Save a checkpoint every this many steps (and at the end or on a stop). Default 100.</summary>
    public int SaveEvery { get; init; } = 100;

    /// <summary>Checkpoints kept on disk (the newest ones; resume needs only the last). Default 2.</summary>
    public int KeepLastCheckpoints { get; init; } = 2;

    /// <summary>Delete <see cref="ResultsDir"/> first and train from step 0 (it says what it removes). Default false: resume.</summary>
    public bool Fresh { get; init; }

    /// <summary>
    /// A folder with the Qwen2 / Qwen2.5 tokenizer files to use instead of the preset's own byte-level BPE, which is
    /// trained on the example data's texts. Default null (the preset's own). A resumed run keeps the tokenizer saved in
    /// <c>&lt;ResultsDir&gt;/tokenizer</c> by its first run.
    /// </summary>
    public string? TokenizerFolder { get; init; }

    /// <summary>Largest BPE vocabulary of the preset's own tokenizer (bytes + merges). Default 1024.</summary>
    public int TokenizerVocabularySize { get; init; } = 1024;

    /// <summary>Progress bar, colour and bare step lines (default: none of the console's extras, bare lines on).</summary>
    public TrainCommandOptions Presentation { get; init; } = new();

    /// <summary>The <c>precision</c> flag: <c>fp32</c>, <c>bf16</c> (bf16 mixed precision over float32 master weights) or
    /// <c>auto</c> (fp32 on the CPU, where the preset trains). Default <c>auto</c>.</summary>
    public string Precision { get; init; } = global::Bagel.Training.Precision.TrainingPrecisionNames.Auto;

    /// <summary>
    /// Render the validation prompts (<c>&lt;ResultsDir&gt;/validation_prompts.jsonl</c>, written on the first run with
    /// four captions, an edit and a question over the example data; edit it to change them) with the EMA weights at
    /// every checkpoint and at the end into <c>&lt;ResultsDir&gt;/validation/step_NNNNNNN.png</c> (64×64 px per image,
    /// the tiny model's largest; <see cref="ValidationImageTimesteps"/> timesteps) and the answer into
    /// <c>step_NNNNNNN_answers.txt</c>. Default true.
    /// </summary>
    public bool ValidationImages { get; init; } = true;

    /// <summary>Sampler timesteps of the tiny preset's validation images (fewer than the default 25, to keep them to
    /// a small share of the run). Default 12.</summary>
    public int ValidationImageTimesteps { get; init; } = 12;

    /// <summary>Called after every step (after the progress bar); for tests and hosts. Default none.</summary>
    public Action<TrainingStepReport>? OnStep { get; init; }

    /// <summary>Changes the preset's flags before the run (e.g. <c>lora_rank</c>, <c>lora_targets</c> and <c>lr</c> for a
    /// LoRA run on the tiny model); null keeps the preset's. A resumed run must be given the same changes.</summary>
    public Action<TrainingConfiguration>? Configure { get; init; }

    /// <summary>Trains LoRA adapters with these options on the frozen tiny model (<c>TrainerBuilder.UseLora</c>) instead
    /// of the model itself; null: the <c>lora_*</c> flags decide (off by default). A resumed run must be given the same.</summary>
    public Bagel.Models.Lora.LoraOptions? Lora { get; init; }

    /// <summary>
    /// The ranks to train with (data-parallel; rank 0 writes the data, tokenizer, log, metrics and checkpoints). Default
    /// null: made from the launcher's variables when a launcher started several processes (mpirun, srun, Bagel.Train
    /// --nproc_per_node), else a single process.
    /// </summary>
    public IProcessGroup? ProcessGroup { get; init; }
}

/// <summary>
/// The named tiny preset (not the reference's defaults) that <c>Bagel.Train</c> runs without arguments: it writes the
/// example dataset (the reference's <c>bagel_example</c> layout), trains a byte-level BPE tokenizer on its texts (or
/// loads the Qwen2.5 files, <see cref="TinyPresetOptions.TokenizerFolder"/>), builds a tiny BAGEL (MoT Qwen2, a tiny
/// SigLIP NaViT and a FLUX-shaped VAE, all randomly initialised) and trains it on CPU, logging the reference's lines,
/// <c>metrics.jsonl</c>, TensorBoard events and checkpoints under <see cref="TinyPresetOptions.ResultsDir"/>.
/// </summary>
/// <remarks>
/// A rerun resumes from the latest checkpoint with the same data and tokenizer, which it reuses from the results folder;
/// a run that has finished its steps reports that and does nothing. <see cref="TinyPresetOptions.Fresh"/> starts over.
/// A run stopped by its token writes a final checkpoint and returns <see cref="TrainCommand.ExitInterrupted"/>.
/// </remarks>
public static partial class TinyPreset
{
    /// <summary>The example data's VAE images are at most 64 px: 4 latent tokens per side.</summary>
    public const int MaxLatentSize = 4;

    /// <summary>The subfolder of the results folder that holds the tokenizer the run trains with.</summary>
    public const string TokenizerFolderName = "tokenizer";

    /// <summary>The subfolder of the results folder that holds the example dataset.</summary>
    public const string DataFolderName = "bagel_example";

    /// <summary>What the model path flags record for this preset: nothing is read from disk.</summary>
    public const string BuiltInCode = "(none: the tiny preset builds its model in code)";

    /// <summary>Runs the preset.</summary>
    /// <param name="options">What to run (default: the console app's run).</param>
    /// <param name="stdout">Receives the bare step lines.</param>
    /// <param name="stderr">Receives the log records and the progress bar.</param>
    /// <param name="cancellationToken">Stops after the current step, with a final checkpoint.</param>
    /// <returns><see cref="TrainCommand.ExitSuccess"/> (also when already complete), <see cref="TrainCommand.ExitFailure"/> or <see cref="TrainCommand.ExitInterrupted"/>.</returns>
    public static async Task<int> RunAsync(TinyPresetOptions options, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        IProcessGroup group;
        bool ownsGroup;
        try
        {
            group = DistributedStartup.Join(options.ProcessGroup, cuda: false, out ownsGroup);
        }
        catch (DistributedException e)
        {
            await stderr.WriteLineAsync($"Bagel.Train: this rank cannot join the job: {e.Message}").ConfigureAwait(false);
            return TrainCommand.ExitUsage;
        }
        try
        {
            using IDisposable current = DistributedRun.Use(group);
            return await RunRankAsync(options, stdout, stderr, group, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (ownsGroup) group.Dispose();
        }
    }

    private static async Task<int> RunRankAsync(TinyPresetOptions options, TextWriter stdout, TextWriter stderr, IProcessGroup group, CancellationToken cancellationToken)
    {
        bool main = group.Rank == 0;
        string results = Path.GetFullPath(options.ResultsDir);
        string checkpoints = Path.Combine(results, "checkpoints");
        if (options.Fresh && main && Directory.Exists(results))
        {
            IReadOnlyList<CheckpointInfo> old = CheckpointCatalog.List(checkpoints);
            string what = old.Count == 0 ? "no checkpoints" : $"{old.Count} checkpoint(s), the last at step {old[^1].CompletedSteps}";
            await stderr.WriteLineAsync($"Bagel.Train --fresh: deleting {results} and everything in it ({what}, metrics.jsonl, log.txt, tensorboard/, " +
                                        $"the example data and the tokenizer), then training from step 0.").ConfigureAwait(false);
            Directory.Delete(results, recursive: true);
        }
        if (main) Directory.CreateDirectory(results);
        group.Barrier(); // the other ranks look at the folder after rank 0 has cleared it

        TrainCommandOptions presentation = options.Presentation;
        using var progress = presentation.ShowProgress && main ? new ProgressLineWriter(stderr) : null;
        using TextWriter? stepLines = progress?.Beside(stdout);
        using ILoggerFactory loggers = main
            ? LoggerFactory.Create(b => b
                .AddProvider(new ReferenceFormatLoggerProvider((TextWriter?)progress ?? stderr, color: presentation.ColorLogs))
                .AddProvider(ReferenceFormatLoggerProvider.ForResultsDir(results))
                .AddBareStepLines(presentation.BareStepLines ? stepLines ?? stdout : null))
            : LoggerFactory.Create(b => b.SetMinimumLevel(DistributedStartup.MinimumLogLevel(group.Rank)).AddProvider(new ReferenceFormatLoggerProvider(stderr, color: presentation.ColorLogs)));
        ILogger log = loggers.CreateLogger("Bagel.Train");
        try
        {
            CheckpointInfo? latest = CheckpointCatalog.FindLatest(checkpoints);
            if (latest is not null && latest.CompletedSteps >= options.TotalSteps)
            {
                LogAlreadyComplete(log, latest.CompletedSteps, options.TotalSteps, latest.Folder, results);
                return TrainCommand.ExitSuccess;
            }
            // Rank 0 writes the data and the tokenizer; the other ranks read them after it.
            if (main) PrepareFolder(results, latest, log);
            ExampleDataSummary data = main ? await WriteOrReuseDataAsync(results, log, cancellationToken).ConfigureAwait(false) : default!;
            BagelTokenizerSetup tokenizer = main ? LoadTokenizer(results, latest is not null, options, log, cancellationToken) : default!;
            group.Barrier();
            if (!main)
            {
                data = await WriteOrReuseDataAsync(results, log, cancellationToken).ConfigureAwait(false);
                tokenizer = LoadTokenizer(results, resuming: true, options, log, cancellationToken);
            }

            TrainingConfiguration config = Configuration(options, results, checkpoints, data);
            options.Configure?.Invoke(config);
            var factory = new DataPipelineFactory(tokenizer, DataWiring.ToPipelineOptions(config), logger: log);
            DataPipeline pipeline = await factory.CreateFromFilesAsync(data.DatasetInfoPath, data.MixConfigPath, cancellationToken: cancellationToken).ConfigureAwait(false);

            BagelConfig modelConfig = ModelConfig(tokenizer.Tokenizer.Count);
            torch.manual_seed(0);
            using var model = new BagelModel(modelConfig);
            using var vae = new FluxAutoEncoder(modelConfig.VaeConfig!);
            var trainable = new BagelTrainingModel(model, vae, () => new BagelModel(modelConfig));
            long parameters = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
            Bagel.Models.Lora.LoraOptions? loraOptions = options.Lora ?? (Bagel.Training.Lora.LoraFlags.Enabled(config.Training) ? Bagel.Training.Lora.LoraFlags.ToOptions(config.Training) : null);
            if (loraOptions is not null)
            {
                // Under LoRA only the adapters train; the base model is frozen.
                long frozen = parameters;
                parameters = Bagel.Models.Lora.LoraAdapterSet.CountParameters(model, loraOptions);
                LogLoraModel(log, parameters, frozen, tokenizer.Tokenizer.Count, options.TotalSteps, data.Folder);
            }
            else
            {
                LogModel(log, parameters, tokenizer.Tokenizer.Count, options.TotalSteps, data.Folder);
            }

            await using var jsonl = main ? new JsonlMetricSink(Path.Combine(results, JsonlMetricSink.DefaultFileName)) : null;
            await using var tensorBoard = main ? new TensorBoardMetricSink(Path.Combine(results, "tensorboard")) : null;
            TrainerBuilder builder = new TrainerBuilder()
                .UseModel(trainable)
                .UseData(pipeline)
                .UseOptions(config)
                .UseLogger(loggers)
                .UseProcessGroup(group)
                .KeepLastCheckpoints(options.KeepLastCheckpoints)
                .DescribeModel(Describe(modelConfig, tokenizer, parameters));
            if (jsonl is not null && tensorBoard is not null) builder.AddMetricSink(jsonl).AddMetricSink(tensorBoard);
            else builder.UseDefaultMetricSinks(false);
            if (progress is not null) builder.OnStep(progress.StepReporter(options.TotalSteps, presentation.ProgressInterval));
            if (options.OnStep is { } onStep) builder.OnStep(onStep);
            if (options.Lora is { } lora) builder.UseLora(lora);
            ValidationImageResult? lastGrid = null;
            if (options.ValidationImages)
            {
                builder.UseValidationImages(ValidationImageSettings(options, results, data.Folder, tokenizer, r => lastGrid = r));
            }
            using Trainer trainer = builder.Build();
            TrainingRunResult result = await trainer.RunAsync(cancellationToken).ConfigureAwait(false);
            progress?.ClearProgress();
            double megabytes = FolderBytes(checkpoints) / (1024.0 * 1024.0);
            if (result.Cancelled)
            {
                LogInterrupted(log, result.CompletedSteps, options.TotalSteps, result.LastCheckpoint);
                return TrainCommand.ExitInterrupted;
            }
            LogDone(log, result.CompletedSteps - result.StartStep, result.StartStep, result.CompletedSteps, result.LastCheckpoint, megabytes, results);
            if (lastGrid?.PngPath is { } grid) LogGrid(log, result.CompletedSteps, trainer.ShardedOptimizer is null or { Mode: Sharding.ShardingMode.Parameters } ? "EMA" : "trained", grid, lastGrid.SidecarPath);
            return TrainCommand.ExitSuccess;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            progress?.ClearProgress();
            LogInterruptedWhileLoading(log);
            return TrainCommand.ExitInterrupted;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            progress?.ClearProgress();
            LogFailed(log, $"{e.GetType().Name}: {e.Message}");
            return TrainCommand.ExitFailure;
        }
    }

    /// <summary>
    /// The tiny preset's model: MoT Qwen2 (hidden 64, 2 layers, 4 heads, 2 KV heads), SigLIP NaViT (hidden 32, 3 layers)
    /// and a FLUX-shaped VAE with 16 latent channels, for a vocabulary of <paramref name="vocabulary"/> ids.
    /// </summary>
    public static BagelConfig ModelConfig(int vocabulary) => new()
    {
        LlmConfig = new Qwen2Config
        {
            HiddenSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, IntermediateSize = 128, VocabSize = vocabulary,
        }.WithBagelOverrides(Qwen2LayerModule.Qwen2MoTDecoderLayer),
        VitConfig = new SiglipVisionConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 3, NumAttentionHeads = 2, ImageSize = 980, PatchSize = 14 }.WithBagelOverrides(),
        VaeConfig = new FluxVaeConfig(3, 32, 3, [1, 1, 1, 1], 1, 16, 0.3611, 0.1159),
        MaxLatentSize = MaxLatentSize,
    };

    /// <summary>The configuration the preset trains with, as <c>run_info.json</c> records it: every value it uses, the reference's defaults elsewhere.</summary>
    private static TrainingConfiguration Configuration(TinyPresetOptions options, string results, string checkpoints, ExampleDataSummary data)
    {
        var config = TrainingConfiguration.Defaults();
        ModelOptions model = config.Model;
        model.ModelPath = model.LlmPath = model.VitPath = model.VaePath = BuiltInCode;
        model.LayerModule = nameof(Qwen2LayerModule.Qwen2MoTDecoderLayer);
        model.MaxLatentSize = MaxLatentSize;
        model.TextCondDropoutProb = model.VaeCondDropoutProb = model.VitCondDropoutProb = 0;

        DataOptions d = config.Data;
        d.DatasetConfigFile = data.MixConfigPath;
        d.DatasetInfoFile = data.DatasetInfoPath;
        d.NumWorkers = 1;
        d.PrefetchFactor = 2;
        d.MaxNumTokensPerSample = 512;
        d.MaxNumTokens = 512;
        d.PreferBufferBefore = 256;
        d.MaxBufferSize = 8;
        d.DataSeed = 42;

        TrainingOptions t = config.Training;
        t.ExpectedNumTokens = 384;
        t.TotalSteps = options.TotalSteps;
        t.LogEvery = 1;
        t.SaveEvery = options.SaveEvery;
        t.Lr = 3e-3;
        t.WarmupSteps = 0;
        t.Ema = 0.99;
        t.CheckpointDir = checkpoints;
        t.ResultsDir = results;
        t.AutoResume = true;
        t.WandbName = "tiny-preset";
        t.Precision = options.Precision;
        return config;
    }

    private static Dictionary<string, string> Describe(BagelConfig config, BagelTokenizerSetup tokenizer, long parameters)
    {
        static string N(long v) => v.ToString(CultureInfo.InvariantCulture);
        Qwen2Config llm = config.LlmConfig;
        SiglipVisionConfig vit = config.VitConfig!;
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["preset"] = "tiny",
            ["trainable_parameters"] = N(parameters),
            ["llm.hidden_size"] = N(llm.HiddenSize),
            ["llm.num_hidden_layers"] = N(llm.NumHiddenLayers),
            ["llm.num_attention_heads"] = N(llm.NumAttentionHeads),
            ["llm.num_key_value_heads"] = N(llm.NumKeyValueHeads),
            ["llm.intermediate_size"] = N(llm.IntermediateSize),
            ["llm.vocab_size"] = N(llm.VocabSize),
            ["vit.hidden_size"] = N(vit.HiddenSize),
            ["vit.num_hidden_layers"] = N(vit.NumHiddenLayers),
            ["vit.num_attention_heads"] = N(vit.NumAttentionHeads),
            ["vit.patch_size"] = N(vit.PatchSize),
            ["vae.z_channels"] = N(config.VaeConfig!.ZChannels),
            ["max_latent_size"] = N(config.MaxLatentSize),
            ["tokenizer"] = tokenizer.Tokenizer.Source,
            ["tokenizer.count"] = N(tokenizer.Tokenizer.Count),
        };
    }

    /// <summary>Before step 0: drops the metrics of an earlier run that no checkpoint continues.</summary>
    private static void PrepareFolder(string results, CheckpointInfo? latest, ILogger log)
    {
        string metrics = Path.Combine(results, JsonlMetricSink.DefaultFileName);
        string tensorBoard = Path.Combine(results, "tensorboard");
        if (latest is not null)
        {
            LogResuming(log, latest.Folder, latest.CompletedSteps); // the trainer drops the metric records of steps it trains again
            return;
        }
        if (File.Exists(metrics) || Directory.Exists(tensorBoard))
        {
            LogNoCheckpoint(log, results);
            if (File.Exists(metrics)) File.Delete(metrics);
            if (Directory.Exists(tensorBoard)) Directory.Delete(tensorBoard, recursive: true);
        }
    }

    /// <summary>The example data: written once (its writer publishes the folder atomically), then reused, so a resume reads the same files.</summary>
    private static async Task<ExampleDataSummary> WriteOrReuseDataAsync(string results, ILogger log, CancellationToken cancellationToken)
    {
        string folder = Path.Combine(results, DataFolderName);
        var writer = new ExampleDataWriter(new ExampleDataOptions { OutputFolder = folder }, log);
        if (!Directory.Exists(folder)) return await writer.WriteAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        LogReusingData(log, folder);
        return new ExampleDataSummary(folder, Path.Combine(folder, ExampleDataLayout.DatasetInfoFile), Path.Combine(folder, ExampleDataLayout.MixConfigFile),
            0, 0, 0, 0, 0, 0);
    }

    /// <summary>
    /// A resume reuses the tokenizer saved by the first run; otherwise the Qwen2.5 files when given, else a byte-level
    /// BPE trained on the example data's texts. The tokenizer in use is saved (BAGEL's tokens included) for the next run.
    /// </summary>
    private static BagelTokenizerSetup LoadTokenizer(string results, bool resuming, TinyPresetOptions options, ILogger log, CancellationToken cancellationToken)
    {
        string saved = Path.Combine(results, TokenizerFolderName);
        if (resuming && File.Exists(Path.Combine(saved, Qwen2Tokenizer.VocabFileName)))
        {
            if (options.TokenizerFolder is not null) LogTokenizerKept(log, saved, options.TokenizerFolder);
            return BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(saved, log, cancellationToken));
        }
        Qwen2Tokenizer tokenizer = options.TokenizerFolder is { } folder
            ? Qwen2Tokenizer.FromFolder(folder, log, cancellationToken)
            : ByteLevelBpeTrainer.Train(new ExampleDataWriter(new ExampleDataOptions { OutputFolder = Path.Combine(results, DataFolderName) }).EnumerateTexts(),
                new ByteLevelBpeTrainingOptions { MaxVocabularySize = options.TokenizerVocabularySize }, log, cancellationToken);
        BagelTokenizerSetup setup = BagelSpecialTokens.Apply(tokenizer);
        setup.Tokenizer.Save(saved);
        LogTokenizerSaved(log, setup.Tokenizer.Count, saved);
        return setup;
    }

    private static long FolderBytes(string folder) =>
        Directory.Exists(folder) ? new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length) : 0;

    [LoggerMessage(Level = LogLevel.Information, Message = "The tiny preset is already complete: {Steps} of {TotalSteps} steps, checkpoint {Checkpoint}; metrics in {Results}. Nothing to train; run with --fresh to delete it and train again from step 0.")]
    private static partial void LogAlreadyComplete(ILogger logger, long steps, long totalSteps, string checkpoint, string results);

    [LoggerMessage(Level = LogLevel.Information, Message = "Resuming the tiny preset from {Checkpoint} at step {Step} (the data and tokenizer of its first run are reused; --fresh starts over).")]
    private static partial void LogResuming(ILogger logger, string checkpoint, long step);

    [LoggerMessage(Level = LogLevel.Information, Message = "No checkpoint in {Results}: training from step 0 (removing the metrics.jsonl and tensorboard/ of the earlier run, which no checkpoint continues).")]
    private static partial void LogNoCheckpoint(ILogger logger, string results);

    [LoggerMessage(Level = LogLevel.Information, Message = "Using the example data already in {Folder}.")]
    private static partial void LogReusingData(ILogger logger, string folder);

    [LoggerMessage(Level = LogLevel.Information, Message = "Resuming with the copy of the tokenizer this run saved when it started ({Saved}); {Requested} is not read again (run with --fresh to train with another tokenizer).")]
    private static partial void LogTokenizerKept(ILogger logger, string saved, string requested);

    [LoggerMessage(Level = LogLevel.Information, Message = "Tokenizer: {Count} ids, saved in {Folder} (a rerun resumes with it).")]
    private static partial void LogTokenizerSaved(ILogger logger, int count, string folder);

    [LoggerMessage(Level = LogLevel.Information, Message = "Tiny preset: {Parameters:N0} trainable parameters, vocabulary {Vocabulary}, {Steps} steps on {Data}")]
    private static partial void LogModel(ILogger logger, long parameters, int vocabulary, int steps, string data);

    [LoggerMessage(Level = LogLevel.Information, Message = "Tiny preset: {Parameters:N0} trainable parameters (LoRA adapters; the base model's {Frozen:N0} are frozen), vocabulary {Vocabulary}, {Steps} steps on {Data}")]
    private static partial void LogLoraModel(ILogger logger, long parameters, long frozen, int vocabulary, int steps, string data);

    [LoggerMessage(Level = LogLevel.Information, Message = "Done: {Trained} steps trained this run (from step {Start} to {Steps}); last checkpoint {Checkpoint}; checkpoints take {Megabytes:F1} MB; log and metrics in {Results}.")]
    private static partial void LogDone(ILogger logger, long trained, long start, long steps, string checkpoint, double megabytes, string results);

    [LoggerMessage(Level = LogLevel.Information, Message = "Validation grid of step {Step} ({Weights} weights, prompts drawn under the images): {Grid} (prompts and settings: {Sidecar}).")]
    private static partial void LogGrid(ILogger logger, long step, string weights, string grid, string sidecar);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Interrupted after {Steps} of {TotalSteps} steps; checkpoint {Checkpoint} written. Run the same command again to resume from it.")]
    private static partial void LogInterrupted(ILogger logger, long steps, long totalSteps, string checkpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Interrupted while loading, before the first step; no checkpoint was written.")]
    private static partial void LogInterruptedWhileLoading(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "The tiny preset failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
