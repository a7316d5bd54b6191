using Bagel.Data.Diagnostics;
using Bagel.Data.Packing;
using Bagel.Data.Pipeline;
using Bagel.Data.Sources;
using Bagel.Tests.Data.Pipeline;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Loop;

/// <summary>Tiny T2I (MSE) and VLM (CE) data on disk, fresh pipelines over it and a small-run configuration.</summary>
internal sealed class LoopFixture : IDisposable
{
    public const int Workers = 2;

    private static readonly PackingOptions SmallPacks = new()
    {
        ExpectedNumTokens = 120, MaxNumTokens = 128, MaxNumTokensPerSample = 128, PreferBufferBefore = 60, MaxBufferSize = 4,
        TextCondDropoutProb = 0.1, VitCondDropoutProb = 0.1, VaeCondDropoutProb = 0.1, MaxLatentSize = 4, MaxNumPatchPerSide = 70,
    };

    // The project's trained tokenizer: its packs give text-only steps right after the resume points, which is what caught
    // parameters without gradients being stepped differently by a resumed run (TrainingSession.MaterializeGradients).
    private readonly PipelineFixture _data = new();
    private DataGroup[]? _groups;

    public string Root => _data.Directory.Path;

    public async Task<DataPipeline> PipelineAsync()
    {
        var skips = new DataSkipCounters();
        if (_groups is null)
        {
            string t2i = await _data.WriteT2IAsync(2, 6, 3);
            var (jsonl, images) = _data.WriteVlm(12);
            _groups =
            [
                new DataGroup("t2i_pretrain", 1, false, new T2IParquetSource("t2i_pretrain", [t2i], [2]), _data.Builder(skips, PipelineFixture.Vae)),
                new DataGroup("vlm_sft", 1, false, new VlmJsonlSource("vlm_sft", [jsonl], [images], [12]), _data.Builder(skips, PipelineFixture.Vit)),
            ];
        }
        return _data.Pipeline(_groups, new DataPipelineOptions { NumWorkers = Workers, PrefetchFactor = 2, DataSeed = 5, Packing = SmallPacks }, skips);
    }

    /// <summary>
    /// A pipeline over tiny T2I data (2 files of 3 rows, so the sources wrap every few steps) whose rows
    /// <paramref name="badRows"/> hold bytes that are no image, and the usual VLM data; its skip counters have no logger.
    /// </summary>
    public async Task<DataPipeline> PipelineWithBadImagesAsync(params int[] badRows)
    {
        var skips = new DataSkipCounters();
        string t2i = await _data.WriteT2IAsync(2, 3, 3, row => badRows.Contains(row)
            ? ([1, 2, 3, 4, 5], $"{{\"short\": \"broken {row}\"}}")
            : (PipelineFixture.Png(32 + 16 * (row % 4), 32 + 16 * (row % 3), row), $"{{\"short\": \"a shape number {row}\"}}"));
        var (jsonl, images) = _data.WriteVlm(12);
        DataGroup[] groups =
        [
            new DataGroup("t2i_pretrain", 1, false, new T2IParquetSource("t2i_pretrain", [t2i], [2]), _data.Builder(skips, PipelineFixture.Vae)),
            new DataGroup("vlm_sft", 1, false, new VlmJsonlSource("vlm_sft", [jsonl], [images], [12]), _data.Builder(skips, PipelineFixture.Vit)),
        ];
        return _data.Pipeline(groups, new DataPipelineOptions { NumWorkers = Workers, PrefetchFactor = 2, DataSeed = 5, Packing = SmallPacks }, skips);
    }

    /// <summary>A configuration for a short run checkpointing into <paramref name="checkpoints"/>.</summary>
    public TrainingConfiguration Configuration(string checkpoints, int totalSteps, int saveEvery = 1000, bool autoResume = false)
    {
        TrainingConfiguration defaults = TrainingConfiguration.Defaults();
        defaults.Data.NumWorkers = Workers;
        TrainingOptions training = defaults.Training;
        training.TotalSteps = totalSteps;
        training.SaveEvery = saveEvery;
        training.LogEvery = 1;
        training.Lr = 2e-2;
        training.WarmupSteps = 2;
        training.Ema = 0.9;
        training.CheckpointDir = Path.Combine(Root, checkpoints);
        training.ResultsDir = Root;
        training.AutoResume = autoResume;
        return defaults;
    }

    public void Dispose() => _data.Dispose();
}
