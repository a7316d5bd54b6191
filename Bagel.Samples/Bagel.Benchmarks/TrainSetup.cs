using Bagel.Core.Batching;
using Bagel.Core.Devices;
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
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Bagel.Benchmarks;

/// <summary>
/// The BAGEL composites the <c>train</c> benchmark trains on the example data: the tiny one of Bagel.Train's preset
/// (hidden 64, 2 layers) and the "small config" of the models issue (the MoT backbone at Qwen2.5-0.5B widths: hidden
/// 896, intermediate 4864, 14 heads, 2 KV heads, the full 151,936-token vocabulary with untied head) with a small
/// SigLIP (hidden 128, 2 layers) and the tiny FLUX-shaped VAE, since the data's images are at most 64 px.
/// </summary>
internal sealed class TrainSetup : IDisposable
{
    /// <summary>The example data's VAE images are at most 64 px = 4 latent tokens per side.</summary>
    private const int MaxLatentSize = 4;

    private TrainSetup(BagelConfig config, BagelModel model, FluxAutoEncoder vae, DataPipeline pipeline, string folder)
    {
        Config = config;
        Model = model;
        Vae = vae;
        Pipeline = pipeline;
        Folder = folder;
    }

    /// <summary>The composite's configuration.</summary>
    public BagelConfig Config { get; }

    /// <summary>The composite being trained.</summary>
    public BagelModel Model { get; }

    /// <summary>The frozen autoencoder that encodes the target images.</summary>
    public FluxAutoEncoder Vae { get; }

    /// <summary>The example data's pipeline (1 worker).</summary>
    public DataPipeline Pipeline { get; }

    /// <summary>The device the model and the VAE live on (the trainer's compute device).</summary>
    public torch.Device Device { get; private init; } = torch.CPU;

    /// <summary>The folder in /tmp holding the data and checkpoints; deleted on dispose.</summary>
    public string Folder { get; }

    /// <summary>Σ sample_len² of the batches read since the last call (for the reference's attention FLOPs term).</summary>
    public double TakeSquaredSampleLengths()
    {
        double value = _squares;
        _squares = 0;
        return value;
    }

    private double _squares;

    /// <summary>Writes the example data under a new folder in /tmp and builds the pipeline and the model.</summary>
    public static async Task<TrainSetup> CreateAsync(string tokenizerFolder, bool small, int expectedTokens, int layers, torch.Device? device = null)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"bagel-train-bench-{Environment.ProcessId}");
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        ExampleDataSummary data = await new ExampleDataWriter(new ExampleDataOptions { OutputFolder = Path.Combine(folder, "data"), Overwrite = true }, NullLogger.Instance)
            .WriteAsync();
        BagelTokenizerSetup tokenizer = BagelSpecialTokens.Apply(Qwen2Tokenizer.FromFolder(tokenizerFolder, NullLogger.Instance));
        var packing = new PackingOptions
        {
            ExpectedNumTokens = expectedTokens, MaxNumTokens = expectedTokens * 4 / 3, MaxNumTokensPerSample = 512, PreferBufferBefore = expectedTokens / 2,
            MaxBufferSize = 8, TextCondDropoutProb = 0, VitCondDropoutProb = 0, VaeCondDropoutProb = 0, MaxLatentSize = MaxLatentSize,
        };
        var factory = new DataPipelineFactory(tokenizer, new DataPipelineOptions { NumWorkers = 1, PrefetchFactor = 2, DataSeed = 42, Packing = packing });
        DataPipeline pipeline = await factory.CreateFromFilesAsync(data.DatasetInfoPath, data.MixConfigPath);
        BagelConfig config = small ? SmallConfig(tokenizer.Tokenizer.Count, layers) : TinyConfig(tokenizer.Tokenizer.Count);
        torch.manual_seed(0);
        var model = new BagelModel(config);
        var vae = new FluxAutoEncoder(config.VaeConfig!);
        if (device is not null && device.type != DeviceType.CPU)
        {
            model.to(device);
            vae.to(device);
        }
        return new TrainSetup(config, model, vae, pipeline, folder) { Device = device ?? torch.CPU };
    }

    /// <summary>The training options: no warm-up, EMA on, one checkpoint at the end only, one data worker.</summary>
    public TrainingConfiguration Options(int steps)
    {
        TrainingConfiguration config = TrainingConfiguration.Defaults();
        config.Data.NumWorkers = 1;
        config.Data.PrefetchFactor = 2;
        config.Training.TotalSteps = steps;
        config.Training.LogEvery = Math.Max(1, steps);
        config.Training.SaveEvery = Math.Max(1, steps);
        config.Training.Lr = 1e-4;
        config.Training.WarmupSteps = 0;
        config.Training.CheckpointDir = Path.Combine(Folder, "checkpoints");
        config.Training.ResultsDir = Path.Combine(Folder, "results");
        return config;
    }

    /// <summary>A trainer on the pipeline (wrapped to count Σ sample_len²), calling <paramref name="onStep"/> after each step.</summary>
    public Trainer BuildTrainer(int steps, Action<TrainingStepReport> onStep, bool flatOptimizer = false) =>
        new TrainerBuilder()
            .UseModel(new BagelTrainingModel(Model, Vae, () => new BagelModel(Config)))
            .UseData((status, token) => Counted(Pipeline.ReadAsync(status, token)), Pipeline.CaptureStatus)
            .UseOptions(Options(steps))
            .UseFlopConfig(FlopConfig)
            .OnStep(onStep)
            .UseFlatBufferOptimizer(flatOptimizer)
            .UseCompute(new ComputeOptions { Device = Device.ToString() })
            .Build();

    /// <summary>The reference's FLOP-count sizes of the language model.</summary>
    public Qwen2FlopConfig FlopConfig
    {
        get
        {
            Qwen2Config c = Config.LlmConfig;
            return new Qwen2FlopConfig(c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.VocabSize);
        }
    }

    private async IAsyncEnumerable<PackedBatch> Counted(IAsyncEnumerable<PackedBatch> batches)
    {
        await foreach (PackedBatch batch in batches)
        {
            foreach (int length in batch.SampleLens) _squares += (double)length * length;
            yield return batch;
        }
    }

    /// <summary>Bagel.Train's tiny preset: hidden 64, 2 layers, a 3-layer SigLIP of width 32, the tiny VAE.</summary>
    public static BagelConfig TinyConfig(int vocabulary) => new()
    {
        LlmConfig = new Qwen2Config
        {
            HiddenSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, IntermediateSize = 128, VocabSize = vocabulary,
        }.WithBagelOverrides(Qwen2LayerModule.Qwen2MoTDecoderLayer),
        VitConfig = new SiglipVisionConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 3, NumAttentionHeads = 2, ImageSize = 980, PatchSize = 14 }.WithBagelOverrides(),
        VaeConfig = TinyVae,
        MaxLatentSize = MaxLatentSize,
    };

    /// <summary>The models issue's small config: Qwen2.5-0.5B widths, MoT, <paramref name="layers"/> layers, with a small SigLIP.</summary>
    public static BagelConfig SmallConfig(int vocabulary, int layers) => new()
    {
        LlmConfig = new Qwen2Config
        {
            HiddenSize = 896, NumHiddenLayers = layers, NumAttentionHeads = 14, NumKeyValueHeads = 2, IntermediateSize = 4864, VocabSize = vocabulary,
        }.WithBagelOverrides(Qwen2LayerModule.Qwen2MoTDecoderLayer),
        VitConfig = new SiglipVisionConfig { HiddenSize = 128, IntermediateSize = 256, NumHiddenLayers = 2, NumAttentionHeads = 2, ImageSize = 980, PatchSize = 14 }.WithBagelOverrides(),
        VaeConfig = TinyVae,
        MaxLatentSize = MaxLatentSize,
    };

    /// <summary>Options of a short run writing into <paramref name="Folder"/> (no warm-up, one final checkpoint).</summary>
    internal sealed record MemoryOptions(string Folder)
    {
        public TrainingConfiguration Configuration(int steps)
        {
            TrainingConfiguration config = TrainingConfiguration.Defaults();
            config.Data.NumWorkers = 1;
            config.Data.PrefetchFactor = 1;
            config.Training.TotalSteps = steps;
            config.Training.LogEvery = Math.Max(1, steps);
            config.Training.SaveEvery = Math.Max(1, steps);
            config.Training.Lr = 1e-4;
            config.Training.WarmupSteps = 0;
            config.Training.CheckpointDir = Path.Combine(Folder, "checkpoints");
            config.Training.ResultsDir = Path.Combine(Folder, "results");
            return config;
        }
    }

    private static FluxVaeConfig TinyVae => new(3, 32, 3, [1, 1, 1, 1], 1, 16, 0.3611, 0.1159);

    public void Dispose()
    {
        Model.Dispose();
        Vae.Dispose();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover folder in /tmp is harmless.
        }
    }
}
