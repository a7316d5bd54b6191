using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Metrics;
using Bagel.Data.Pipeline;
using Bagel.Training.Checkpoints;
using Bagel.Training.Metrics;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bagel.Training.Loop;

/// <summary>
/// Composes a <see cref="Trainer"/> fluently: <c>new TrainerBuilder().UseModel(m).UseData(p).UseOptions(c).Build()</c>.
/// Each <c>Use*</c> replaces the earlier value; <c>Add*</c> and <c>On*</c> accumulate. Nothing is checked until
/// <see cref="Build"/>, which reports every missing part and bad option at once.
/// </summary>
public sealed class TrainerBuilder
{
    private readonly List<IMetricSink> _sinks = [];
    private readonly List<Action<TrainingStepReport>> _onStep = [];
    private readonly List<Action<CheckpointInfo>> _onSave = [];
    private ITrainableModel? _model;
    private DataPipeline? _pipeline;
    private TrainingDataSource? _source;
    private TrainingConfiguration _configuration = TrainingConfiguration.Defaults();
    private ILoggerFactory _loggerFactory = NullLoggerFactory.Instance;
    private TimeProvider _time = TimeProvider.System;
    private Qwen2FlopConfig? _flops;
    private int _maxConsecutiveNonFinite = NonFiniteStepGuard.DefaultMaxConsecutive;
    private int? _keepLast;
    private bool _flatBufferOptimizer;

    /// <summary>The model to train (required).</summary>
    public TrainerBuilder UseModel(ITrainableModel model)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        return this;
    }

    /// <summary>
    /// Trains on <paramref name="pipeline"/>, resumable exactly: every checkpoint stores its status. Its worker count
    /// must be the configuration's <c>num_workers</c> (the status is saved with that count).
    /// </summary>
    public TrainerBuilder UseData(DataPipeline pipeline)
    {
        _pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));
        _source = null;
        return this;
    }

    /// <summary>
    /// Trains on batches from <paramref name="read"/>, which receives the saved status on resume (null from scratch);
    /// <paramref name="captureStatus"/> gives the status after the last batch taken (null: no data resume).
    /// </summary>
    public TrainerBuilder UseData(Func<RankDataStatus?, CancellationToken, IAsyncEnumerable<PackedBatch>> read, Func<RankDataStatus>? captureStatus = null)
    {
        ArgumentNullException.ThrowIfNull(read);
        _source = new TrainingDataSource(read, captureStatus, NumWorkers: -1);
        _pipeline = null;
        return this;
    }

    /// <summary>The reference's flags (default: every flag at its reference default).</summary>
    public TrainerBuilder UseOptions(TrainingConfiguration configuration)
    {
        _configuration = configuration ?? throw new ArgumentNullException(nameof(configuration));
        return this;
    }

    /// <summary>The reference's flags as the three option objects.</summary>
    public TrainerBuilder UseOptions(ModelOptions model, DataOptions data, TrainingOptions training) => UseOptions(new TrainingConfiguration(model, data, training));

    /// <summary>Where the loop logs (default: nowhere). Add <c>ReferenceFormatLoggerProvider</c> for the reference's console lines.</summary>
    public TrainerBuilder UseLogger(ILoggerFactory loggerFactory)
    {
        _loggerFactory = loggerFactory ?? throw new ArgumentNullException(nameof(loggerFactory));
        return this;
    }

    /// <summary>The clock for throughput and checkpoint time stamps (default <see cref="TimeProvider.System"/>).</summary>
    public TrainerBuilder UseTimeProvider(TimeProvider time)
    {
        _time = time ?? throw new ArgumentNullException(nameof(time));
        return this;
    }

    /// <summary>The language model's sizes, for the reference's FLOP count and MFU (default: none, so TFLOPS and MFU log 0).</summary>
    public TrainerBuilder UseFlopConfig(Qwen2FlopConfig config)
    {
        _flops = config ?? throw new ArgumentNullException(nameof(config));
        return this;
    }

    /// <summary>Stops the run after this many NaN/Inf steps in a row (default <see cref="NonFiniteStepGuard.DefaultMaxConsecutive"/>).</summary>
    public TrainerBuilder UseNonFiniteLimit(int maxConsecutive)
    {
        _maxConsecutiveNonFinite = maxConsecutive;
        return this;
    }

    /// <summary>Keeps only the last <paramref name="keepLast"/> checkpoints (default: keep all, as the reference).</summary>
    public TrainerBuilder KeepLastCheckpoints(int keepLast)
    {
        _keepLast = keepLast;
        return this;
    }

    /// <summary>
    /// Steps AdamW on flat buffers (<see cref="FlatBufferAdamW"/>: bit-identical to TorchSharp's AdamW, fewer kernel
    /// launches; default off). Checkpoints are the same either way.
    /// </summary>
    public TrainerBuilder UseFlatBufferOptimizer(bool enabled = true)
    {
        _flatBufferOptimizer = enabled;
        return this;
    }

    /// <summary>Adds a sink that receives every logged step's metrics (flushed at each checkpoint; the caller disposes it).</summary>
    public TrainerBuilder AddMetricSink(IMetricSink sink)
    {
        _sinks.Add(sink ?? throw new ArgumentNullException(nameof(sink)));
        return this;
    }

    /// <summary>Called after every completed step, on the loop's thread.</summary>
    public TrainerBuilder OnStep(Action<TrainingStepReport> callback)
    {
        _onStep.Add(callback ?? throw new ArgumentNullException(nameof(callback)));
        return this;
    }

    /// <summary>Called after every checkpoint is written, on the loop's thread.</summary>
    public TrainerBuilder OnSave(Action<CheckpointInfo> callback)
    {
        _onSave.Add(callback ?? throw new ArgumentNullException(nameof(callback)));
        return this;
    }

    /// <summary>Validates everything and creates the trainer (optimizer, schedule, EMA copy, checkpointer).</summary>
    /// <exception cref="InvalidTrainingOptionsException">Lists every missing part and bad option.</exception>
    public Trainer Build()
    {
        var failures = new List<string>(_configuration.Validate());
        if (_model is null) failures.Add("No model: call UseModel(ITrainableModel).");
        if (_pipeline is null && _source is null) failures.Add("No data: call UseData(DataPipeline) or UseData(read, captureStatus).");
        if (_maxConsecutiveNonFinite < 1) failures.Add($"UseNonFiniteLimit: {_maxConsecutiveNonFinite} must be at least 1.");
        if (_keepLast is < 1) failures.Add($"KeepLastCheckpoints: {_keepLast} must be at least 1.");
        if (failures.Count > 0) throw new InvalidTrainingOptionsException(failures);

        int numWorkers = _configuration.Data.NumWorkers;
        TrainingDataSource data = _pipeline is not null
            ? TrainingDataSource.FromPipeline(_pipeline, numWorkers)
            : _source! with { NumWorkers = numWorkers };
        return new Trainer(new TrainerSettings(_model!, data, _configuration, [.. _sinks], [.. _onStep], [.. _onSave],
            _loggerFactory.CreateLogger<Trainer>(), _time, _flops ?? NoFlops, _maxConsecutiveNonFinite, _keepLast, _flatBufferOptimizer));
    }

    /// <summary>Sizes that count no FLOPs, for runs without a language-model config.</summary>
    private static readonly Qwen2FlopConfig NoFlops = new(HiddenSize: 0, IntermediateSize: 0, NumHiddenLayers: 0, NumAttentionHeads: 1, NumKeyValueHeads: 1, VocabSize: 0);
}
