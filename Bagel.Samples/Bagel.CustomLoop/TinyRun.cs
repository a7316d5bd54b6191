using Bagel.Data.Example;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using Bagel.Training.Loop;
using Bagel.Training.Metrics;
using Bagel.Training.Models;
using Bagel.Training.Options;
using Bagel.Training.Recipes;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.CustomLoop;

/// <summary>
/// What the loop trains, built from nothing but the clone: the example dataset (the reference's <c>bagel_example</c>
/// layout), a byte-level tokenizer, the data pipeline, the tiny BAGEL (the tiny preset's sizes, randomly initialised)
/// and the flags. The same pieces serve the <see cref="Trainer"/>, so a checkpoint of either resumes in the other.
/// </summary>
public sealed class TinyRun : IDisposable
{
    /// <summary>The example data's VAE images are at most 64 px: 4 latent tokens per side.</summary>
    public const int MaxLatentSize = TinyPreset.MaxLatentSize;

    private readonly BagelModel _model;
    private readonly FluxAutoEncoder _vae;

    private TinyRun(BagelModel model, FluxAutoEncoder vae, BagelTrainingModel trainable, DataPipeline data, TrainingConfiguration configuration, Qwen2FlopConfig flops)
    {
        _model = model;
        _vae = vae;
        Model = trainable;
        Data = data;
        Configuration = configuration;
        Flops = flops;
    }

    /// <summary>The model as the loop sees it: the composite plus the frozen VAE that encodes the target images.</summary>
    public BagelTrainingModel Model { get; }

    /// <summary>The data pipeline over the example data: an endless, resumable stream of packed batches.</summary>
    public DataPipeline Data { get; }

    /// <summary>The reference's flags for this run (<c>auto_resume</c> on, so a rerun continues from the last checkpoint).</summary>
    public TrainingConfiguration Configuration { get; }

    /// <summary>The language model's sizes, for the log line's FLOPs and MFU.</summary>
    public Qwen2FlopConfig Flops { get; }

    /// <summary>
    /// Writes the example data under <paramref name="dataFolder"/> (kept when it is already there), builds the pipeline
    /// and a freshly initialised tiny BAGEL (torch seed 0), and sets the flags for <paramref name="totalSteps"/> steps
    /// checkpointing into <paramref name="checkpointDir"/> every <paramref name="saveEvery"/> steps.
    /// </summary>
    public static async Task<TinyRun> CreateAsync(string dataFolder, string checkpointDir, int totalSteps, int saveEvery, ILogger logger, CancellationToken cancellationToken)
    {
        var example = new ExampleDataOptions { OutputFolder = dataFolder, Overwrite = true };
        string datasetInfo = Path.Combine(dataFolder, ExampleDataLayout.DatasetInfoFile), mix = Path.Combine(dataFolder, ExampleDataLayout.MixConfigFile);
        if (!File.Exists(datasetInfo) || !File.Exists(mix))
        {
            ExampleDataSummary written = await new ExampleDataWriter(example, logger).WriteAsync(cancellationToken: cancellationToken);
            (datasetInfo, mix) = (written.DatasetInfoPath, written.MixConfigPath);
        }
        BagelTokenizerSetup tokenizer = BagelSpecialTokens.Apply(ByteLevelBpeTrainer.BytesOnly()); // one token per byte: needs no files

        TrainingConfiguration configuration = TrainingConfiguration.Defaults();
        configuration.Data.NumWorkers = 1;
        configuration.Data.PrefetchFactor = 2;
        TrainingOptions training = configuration.Training;
        training.TotalSteps = totalSteps;
        training.SaveEvery = saveEvery;
        training.LogEvery = 1;
        training.Lr = 3e-3;
        training.WarmupSteps = 0;
        training.Ema = 0.99;
        training.AutoResume = true;
        training.CheckpointDir = checkpointDir;
        training.ResultsDir = Path.GetDirectoryName(Path.GetFullPath(checkpointDir))!;

        var packing = new PackingOptions
        {
            ExpectedNumTokens = 384, MaxNumTokens = 512, MaxNumTokensPerSample = 512, PreferBufferBefore = 256, MaxBufferSize = 8,
            TextCondDropoutProb = 0, VitCondDropoutProb = 0, VaeCondDropoutProb = 0, MaxLatentSize = MaxLatentSize,
        };
        var factory = new DataPipelineFactory(tokenizer, new DataPipelineOptions { NumWorkers = 1, PrefetchFactor = 2, DataSeed = 42, Packing = packing }, logger: logger);
        DataPipeline data = await factory.CreateFromFilesAsync(datasetInfo, mix, cancellationToken: cancellationToken);

        BagelConfig config = TinyPreset.ModelConfig(tokenizer.Tokenizer.Count); // the tiny preset's sizes
        torch.manual_seed(0);
        var model = new BagelModel(config);
        var vae = new FluxAutoEncoder(config.VaeConfig!);
        var trainable = new BagelTrainingModel(model, vae, () => new BagelModel(config));
        Qwen2Config llm = config.LlmConfig;
        var flops = new Qwen2FlopConfig(llm.HiddenSize, llm.IntermediateSize, llm.NumHiddenLayers, llm.NumAttentionHeads, llm.NumKeyValueHeads, llm.VocabSize);
        return new TinyRun(model, vae, trainable, data, configuration, flops);
    }

    /// <summary>Disposes the model and the VAE.</summary>
    public void Dispose()
    {
        _model.Dispose();
        _vae.Dispose();
    }
}
