using Bagel.Core.DataStatus;
using Bagel.Data.Example;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using Bagel.Training.Logging;
using Bagel.Training.Loop;
using Bagel.Training.Metrics;
using Bagel.Training.Models;
using Bagel.Training.Options;
using Bagel.Training.Recipes;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Train;

/// <summary>
/// The named tiny preset (not the reference's defaults): writes the example dataset, builds a tiny BAGEL (MoT Qwen2 with
/// the Qwen2.5 vocabulary, a tiny SigLIP and a tiny FLUX-shaped VAE, all randomly initialised) and trains it on CPU for a
/// few dozen steps, logging the reference's lines, metrics (JSONL, TensorBoard) and checkpoints under results/tiny-preset.
/// </summary>
internal static class TinyPreset
{
    public const int MaxLatentSize = 4; // the example data's VAE images are at most 64 px = 4 latent tokens per side

    public static async Task<int> RunAsync(string tokenizerFolder, bool showProgress, CancellationToken cancellationToken)
    {
        string results = Path.GetFullPath(Path.Combine("results", "tiny-preset"));
        if (Directory.Exists(results)) Directory.Delete(results, recursive: true); // a fresh run each time
        Directory.CreateDirectory(results);
        using var progress = showProgress ? new ProgressLineWriter(Console.Error) : null;
        using TextWriter? stepLines = progress?.Beside(Console.Out); // the bare step line on stdout, as the reference's rank 0 prints it
        using var loggers = LoggerFactory.Create(b => b.AddProvider(new ReferenceFormatLoggerProvider(progress ?? Console.Error)).AddProvider(ReferenceFormatLoggerProvider.ForResultsDir(results))
            .AddProvider(new BareStepLineLoggerProvider(stepLines ?? Console.Out)));
        ILogger log = loggers.CreateLogger("Bagel.Train");

        ExampleDataSummary data = await new ExampleDataWriter(new ExampleDataOptions { OutputFolder = Path.Combine(results, "bagel_example"), Overwrite = true }, log)
            .WriteAsync(cancellationToken: cancellationToken);
        BagelTokenizerSetup tokenizer = BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(tokenizerFolder, log));

        TrainingConfiguration config = TrainingConfiguration.Defaults();
        config.Data.NumWorkers = 1;
        config.Data.PrefetchFactor = 2;
        config.Training.TotalSteps = 300;
        config.Training.LogEvery = 1;
        config.Training.SaveEvery = 100;
        config.Training.Lr = 3e-3;
        config.Training.WarmupSteps = 0;
        config.Training.Ema = 0.99;
        config.Training.CheckpointDir = Path.Combine(results, "checkpoints");
        config.Training.ResultsDir = results;

        var packing = new PackingOptions
        {
            ExpectedNumTokens = 384, MaxNumTokens = 512, MaxNumTokensPerSample = 512, PreferBufferBefore = 256, MaxBufferSize = 8,
            TextCondDropoutProb = 0, VitCondDropoutProb = 0, VaeCondDropoutProb = 0, MaxLatentSize = MaxLatentSize,
        };
        var factory = new DataPipelineFactory(tokenizer, new DataPipelineOptions { NumWorkers = 1, PrefetchFactor = 2, DataSeed = 42, Packing = packing }, logger: log);
        DataPipeline pipeline = await factory.CreateFromFilesAsync(data.DatasetInfoPath, data.MixConfigPath, cancellationToken: cancellationToken);

        BagelConfig modelConfig = ModelConfig(tokenizer.Tokenizer.Count);
        torch.manual_seed(0);
        using var model = new BagelModel(modelConfig);
        using var vae = new FluxAutoEncoder(modelConfig.VaeConfig!);
        var trainable = new BagelTrainingModel(model, vae, () => new BagelModel(modelConfig));
        log.LogInformation("Tiny preset: {Parameters:N0} trainable parameters, {Steps} steps on {Data}", model.parameters().Where(p => p.requires_grad).Sum(p => p.numel()), config.Training.TotalSteps, data.Folder);

        TrainerBuilder builder = new TrainerBuilder()
            .UseModel(trainable)
            .UseData(pipeline)
            .UseOptions(config)
            .UseLogger(loggers)
            .AddMetricSink(new JsonlMetricSink(Path.Combine(results, JsonlMetricSink.DefaultFileName)))
            .AddMetricSink(new TensorBoardMetricSink(Path.Combine(results, "tensorboard")));
        if (progress is not null) builder.OnStep(progress.StepReporter(config.Training.TotalSteps, TimeSpan.FromMilliseconds(250)));
        using Trainer trainer = builder.Build();
        TrainingRunResult result = await trainer.RunAsync(cancellationToken);
        progress?.ClearProgress();
        log.LogInformation("Done: {Steps} steps, last checkpoint {Checkpoint}; metrics in {Results}", result.CompletedSteps, result.LastCheckpoint, results);
        return 0;
    }

    private static BagelConfig ModelConfig(int vocabulary) => new()
    {
        LlmConfig = new Qwen2Config
        {
            HiddenSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, IntermediateSize = 128, VocabSize = vocabulary,
        }.WithBagelOverrides(Qwen2LayerModule.Qwen2MoTDecoderLayer),
        VitConfig = new SiglipVisionConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 3, NumAttentionHeads = 2, ImageSize = 980, PatchSize = 14 }.WithBagelOverrides(),
        VaeConfig = new FluxVaeConfig(3, 32, 3, [1, 1, 1, 1], 1, 16, 0.3611, 0.1159),
        MaxLatentSize = MaxLatentSize,
    };
}
