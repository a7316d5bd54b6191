using Bagel.Core.Batching;
using Bagel.Data.Diagnostics;
using Bagel.Data.Pipeline;
using Bagel.Data.Samples;
using Bagel.Data.Sources;
using Bagel.Tests.Data.Pipeline;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using Bagel.Training.Options;

namespace Bagel.Tests.Training.Options;

/// <summary>Which tiny data sets a pipeline of the option-effect tests reads.</summary>
[Flags]
internal enum OptionEffectData
{
    T2I = 1,
    Vlm = 2,
    Edit = 4,
    T2IAndVlm = T2I | Vlm,
}

/// <summary>
/// The seed guide's options end to end: a real command line (tiny token budgets for the tiny data plus the option
/// under test) goes through <see cref="ReferenceCommandLine.Bind"/>, the pipeline is built from it with
/// <see cref="DataWiring.ToPipelineOptions"/> and the trainer with <see cref="TrainerBuilder.UseOptions(TrainingConfiguration)"/>.
/// </summary>
internal sealed class OptionEffectFixture : IDisposable
{
    /// <summary>Budgets that fit the tiny images (at most 64 px: 4×4 latents, 4×4 ViT patches), 1 step, no warm-up.</summary>
    private static readonly string[] SmallRun =
    [
        "--expected_num_tokens", "120", "--max_num_tokens", "128", "--max_num_tokens_per_sample", "128",
        "--prefer_buffer_before", "60", "--max_buffer_size", "4", "--max_latent_size", "4",
        "--num_workers", "2", "--data_seed", "5", "--total_steps", "1", "--warmup_steps", "0", "--log_every", "1", "--lr", "0.02",
    ];

    private readonly PipelineFixture _data = new();
    private string? _t2i, _edit;
    private (string Jsonl, string Images)? _vlm;

    public string Root => _data.Directory.Path;

    /// <summary>Binds the small-run flags, then <paramref name="args"/> (a repeat overrides: the last one wins); checkpoints go to <c>Root/checkpoints</c> unless given.</summary>
    public TrainingConfiguration Bind(params string[] args) =>
        ReferenceCommandLine.Bind([.. SmallRun, "--checkpoint_dir", Path.Combine(Root, "checkpoints"), "--results_dir", Root, .. args]);

    /// <summary>A pipeline over <paramref name="kinds"/> built from <paramref name="configuration"/>; <paramref name="wrap"/> decorates every sample builder.</summary>
    public async Task<DataPipeline> PipelineAsync(TrainingConfiguration configuration, OptionEffectData kinds, Func<ISampleBuilder, ISampleBuilder>? wrap = null)
    {
        var skips = new DataSkipCounters();
        wrap ??= builder => builder;
        var groups = new List<DataGroup>();
        if (kinds.HasFlag(OptionEffectData.T2I))
        {
            _t2i ??= await _data.WriteT2IAsync(2, 6, 3);
            groups.Add(new DataGroup("t2i_pretrain", 1, false, new T2IParquetSource("t2i_pretrain", [_t2i], [2]), wrap(_data.Builder(skips, PipelineFixture.Vae))));
        }
        if (kinds.HasFlag(OptionEffectData.Vlm))
        {
            _vlm ??= _data.WriteVlm(12);
            var (jsonl, images) = _vlm.Value;
            groups.Add(new DataGroup("vlm_sft", 1, false, new VlmJsonlSource("vlm_sft", [jsonl], [images], [12]), wrap(_data.Builder(skips, PipelineFixture.Vit))));
        }
        if (kinds.HasFlag(OptionEffectData.Edit))
        {
            _edit ??= await _data.WriteEditAsync(2, 8, 2);
            var source = await EditParquetSource.CreateAsync("unified_edit", [_edit], [2], null, cancellationToken: TestContext.Current.CancellationToken);
            groups.Add(new DataGroup("unified_edit", 1, false, source, wrap(_data.Builder(skips, PipelineFixture.Vae, PipelineFixture.Vit))));
        }
        return _data.Pipeline(groups, DataWiring.ToPipelineOptions(configuration), skips);
    }

    /// <summary>Reads the first <paramref name="count"/> batches of <paramref name="pipeline"/> through <paramref name="read"/>, disposing each.</summary>
    public static async Task<List<T>> TakeAsync<T>(DataPipeline pipeline, int count, Func<PackedBatch, T> read)
    {
        var result = new List<T>();
        await foreach (PackedBatch batch in pipeline.ReadAsync(null, TestContext.Current.CancellationToken))
        {
            using (batch) result.Add(read(batch));
            if (result.Count == count) break;
        }
        return result;
    }

    /// <summary>Trains <paramref name="model"/> on <paramref name="data"/> (default T2I and VLM) with <paramref name="configuration"/>; <paramref name="inspect"/> sees the trainer after the run.</summary>
    public async Task<OptionEffectRun> TrainAsync(TrainingConfiguration configuration, TinyPackedModel model,
        Action<TrainerBuilder>? configure = null, Action<Trainer>? inspect = null, OptionEffectData data = OptionEffectData.T2IAndVlm)
    {
        var steps = new List<TrainingStepReport>();
        var builder = new TrainerBuilder()
            .UseModel(model)
            .UseData(await PipelineAsync(configuration, data))
            .UseOptions(configuration)
            .OnStep(steps.Add);
        configure?.Invoke(builder);
        using Trainer trainer = builder.Build();
        TrainingRunResult result = await trainer.RunAsync(TestContext.Current.CancellationToken);
        inspect?.Invoke(trainer);
        return new OptionEffectRun(result, steps);
    }

    public void Dispose() => _data.Dispose();
}

/// <summary>What one trainer run of the option-effect tests did.</summary>
internal sealed record OptionEffectRun(TrainingRunResult Result, List<TrainingStepReport> Steps);
