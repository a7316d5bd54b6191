using Bagel.Data.Config;
using Bagel.Data.Example;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Tokenization;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Qwen2;
using Bagel.Models.Siglip;
using Bagel.Training.Logging;
using Bagel.Training.Options;
using Microsoft.Extensions.Logging;

namespace Bagel.BuilderSamples;

/// <summary>What the three samples share: example data, one dataset group, a tiny model and short-run options.</summary>
internal static class SampleSetup
{
    public static ILoggerFactory Loggers { get; } = LoggerFactory.Create(b => b.AddProvider(new ReferenceFormatLoggerProvider(Console.Error, color: ReferenceFormatLoggerProvider.IsTerminalColor(Console.IsErrorRedirected))));

    public static string Results(string name) => Path.GetFullPath(Path.Combine("results", name));

    /// <summary>Writes the example data and builds a pipeline that reads only <paramref name="group"/>.</summary>
    public static async Task<DataPipeline> PipelineAsync(string name, string group, BagelTokenizerSetup tokenizer, CancellationToken ct)
    {
        var data = await new ExampleDataWriter(new ExampleDataOptions { OutputFolder = Path.Combine(Results(name), "data"), Overwrite = true })
            .WriteAsync(cancellationToken: ct);
        var registry = DatasetInfoRegistry.Load(data.DatasetInfoPath);
        var all = DatasetMixConfig.Load(data.MixConfigPath, registry);
        var only = new DatasetMixConfig([.. all.Groups.Where(g => g.Name == group).Select(g => g with { Weight = 1, IsMandatory = false })], all.SourceFile);
        var packing = new PackingOptions { ExpectedNumTokens = 256, MaxNumTokens = 384, MaxNumTokensPerSample = 384, MaxLatentSize = 4, VitCondDropoutProb = 0.3, VaeCondDropoutProb = 0.3 };
        var factory = new DataPipelineFactory(tokenizer, new DataPipelineOptions { NumWorkers = 1, Packing = packing });
        return await factory.CreateAsync(registry, only, cancellationToken: ct);
    }

    public static BagelConfig Model(int vocabulary, bool visualGen, bool visualUnd) => new()
    {
        VisualGen = visualGen,
        VisualUnd = visualUnd,
        LlmConfig = new Qwen2Config { HiddenSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, IntermediateSize = 128, VocabSize = vocabulary }
            .WithBagelOverrides(Qwen2LayerModule.Qwen2MoTDecoderLayer),
        VitConfig = visualUnd ? new SiglipVisionConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 3, NumAttentionHeads = 2, ImageSize = 980, PatchSize = 14 }.WithBagelOverrides() : null,
        VaeConfig = visualGen ? new FluxVaeConfig(3, 32, 3, [1, 1, 1, 1], 1, 16, 0.3611, 0.1159) : null,
        MaxLatentSize = 4,
    };

    public static TrainingConfiguration Options(string name, int steps)
    {
        TrainingConfiguration config = TrainingConfiguration.Defaults();
        config.Data.NumWorkers = 1;
        config.Training.TotalSteps = steps;
        config.Training.LogEvery = 5;
        config.Training.Lr = 2e-3;
        config.Training.WarmupSteps = 0;
        config.Training.CheckpointDir = Path.Combine(Results(name), "checkpoints");
        config.Training.ResultsDir = Results(name);
        return config;
    }
}
