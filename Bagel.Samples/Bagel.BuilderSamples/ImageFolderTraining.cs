using Bagel.Data.Config;
using Bagel.Data.Images;
using Bagel.Data.Pipeline;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Qwen2;
using Bagel.Training.Loop;
using Bagel.Training.Models;
using Bagel.Training.Options;
using Microsoft.Extensions.Logging;

namespace Bagel.BuilderSamples;

/// <summary>Text-to-image training on a plain folder of images, each with its caption in a .txt file beside it.</summary>
public static class ImageFolderTraining
{
    /// <summary>Trains a tiny, randomly initialised T2I model for <paramref name="steps"/> steps on the folder.</summary>
    /// <param name="imageFolder">Images (png, jpg, webp, ...) with <c>name.txt</c> captions beside them.</param>
    /// <param name="tokenizerFolder">A Qwen2 / Qwen2.5 tokenizer folder (tokenizer.json or vocab.json + merges.txt), or null
    /// for a byte-level tokenizer that needs no files.</param>
    /// <param name="resultsDir">Where logs, metrics and checkpoints go.</param>
    /// <param name="steps">Optimizer steps to run.</param>
    /// <param name="loggers">Receives the reference-format log lines.</param>
    /// <param name="cancellationToken">Stops after the current step (with a final checkpoint).</param>
    public static async Task RunAsync(string imageFolder, string? tokenizerFolder, string resultsDir, int steps,
        ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        // The reference's flags, set in code; the data, model and trainer below are all built from them.
        TrainingConfiguration options = TrainingConfiguration.Defaults();
        options.Training.VisualUnd = false;            // T2I only: no ViT branch
        options.Training.TotalSteps = steps;
        options.Training.WarmupSteps = 0;
        options.Training.Lr = 1e-3;
        options.Training.LogEvery = 1;
        options.Training.ExpectedNumTokens = 256;      // tiny packs for a tiny model
        options.Data.MaxNumTokens = 384;
        options.Data.MaxNumTokensPerSample = 384;
        options.Data.NumWorkers = 1;
        options.Model.MaxLatentSize = 4;                // images up to 64 px: 4x4 latent tokens
        options.Training.ResultsDir = resultsDir;
        options.Training.CheckpointDir = Path.Combine(resultsDir, "checkpoints");

        // The data: one t2i_image_folder group reading the folder, images resized to 32-64 px on the 16 px grid.
        Qwen2Tokenizer text = tokenizerFolder is null ? ByteLevelBpeTrainer.BytesOnly() : Qwen2Tokenizer.FromFolder(tokenizerFolder);
        BagelTokenizerSetup tokenizer = BagelSpecialTokens.Apply(text);
        var registry = new DatasetInfoRegistry()
            .Add(DatasetGroupKinds.T2IImageFolder, "my_images", new DatasetInfoEntry { DataDir = imageFolder });
        var mix = new DatasetMixConfig([new DatasetGroupConfig
        {
            Name = DatasetGroupKinds.T2IImageFolder,
            DatasetNames = ["my_images"],
            NumUsedData = [1_000_000],
            Weight = 1,
            ImageTransform = new ImageTransformOptions { MaxImageSize = 64, MinImageSize = 32 },
        }]);
        DataPipeline data = await new DataPipelineFactory(tokenizer, DataWiring.ToPipelineOptions(options),
                modelLimits: DataWiring.ToModelImageLimits(options), logger: loggers.CreateLogger("data"))
            .CreateAsync(registry, mix, cancellationToken: cancellationToken);

        // The model: a tiny MoT BAGEL with the generation branch only. For real training, build it from Qwen2.5 and
        // FluxAutoEncoder.Load("ae.safetensors") instead, or let BagelRecipe.BuildAsync do it from the flags.
        var config = new BagelConfig
        {
            VisualGen = true,
            VisualUnd = false,
            LlmConfig = new Qwen2Config
            {
                HiddenSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2,
                IntermediateSize = 128, VocabSize = tokenizer.Tokenizer.Count,
            }.WithBagelOverrides(Qwen2LayerModule.Qwen2MoTDecoderLayer),
            VaeConfig = new FluxVaeConfig(3, 32, 3, [1, 1, 1, 1], 1, 16, 0.3611, 0.1159),
            MaxLatentSize = options.Model.MaxLatentSize,
        };
        using var model = new BagelModel(config);
        using var vae = new FluxAutoEncoder(config.VaeConfig);

        using Trainer trainer = new TrainerBuilder()
            .UseModel(new BagelTrainingModel(model, vae, () => new BagelModel(config)))
            .UseData(data)
            .UseOptions(options)
            .UseLogger(loggers)
            .Build();
        await trainer.RunAsync(cancellationToken);
    }
}
