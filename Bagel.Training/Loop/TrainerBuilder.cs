using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using Bagel.Core.Devices;
using Bagel.Core.Metrics;
using Bagel.Data.Pipeline;
using Bagel.Training.Checkpoints;
using Bagel.Training.Logging;
using Bagel.Training.Metrics;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Bagel.Training.Schedules;
using Bagel.Training.Validation;
using Bagel.Training.ValidationImages;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Training.Loop;

/// <summary>
/// Composes a <see cref="Trainer"/> fluently: <c>new TrainerBuilder().UseModel(m).UseData(p).UseOptions(c).Build()</c>.
/// Each <c>Use*</c> replaces the earlier value; <c>Add*</c> and <c>On*</c> accumulate. Nothing is checked until
/// <see cref="Build"/>, which reports every missing part and bad option at once, then logs a warning for settings that
/// do not fit together (warm-up longer than the run, <c>save_every</c> or <c>log_every</c> above <c>total_steps</c>,
/// reference-sized batches on the CPU).
/// </summary>
public sealed partial class TrainerBuilder
{
    private readonly List<IMetricSink> _sinks = [];
    private readonly List<Action<TrainingStepReport>> _onStep = [];
    private readonly List<Action<CheckpointInfo>> _onSave = [];
    private ITrainableModel? _model;
    private DataPipeline? _pipeline;
    private TrainingDataSource? _source;
    private TrainingConfiguration _configuration = TrainingConfiguration.Defaults();
    private ILoggerFactory? _loggerFactory;
    private bool _defaultMetricSinks = true;
    private bool _stopOnSignals;
    private TimeProvider _time = TimeProvider.System;
    private Qwen2FlopConfig? _flops;
    private int _maxConsecutiveNonFinite = NonFiniteStepGuard.DefaultMaxConsecutive;
    private int? _keepLast;
    private ComputeOptions _compute = new();
    private ValidationImageOptions? _validationImages;
    private ILearningRateSchedule? _schedule;
    private Func<torch.nn.Module, IEnumerable<ParameterGroup>>? _parameterGroups;
    private readonly List<Action<ValidationReport>> _onEval = [];
    private ValidationSet? _validationSet;
    private int? _validateEvery;
    private bool _flatBufferOptimizer = true;
    private IReadOnlyDictionary<string, string>? _modelDescription;
    private Precision.TrainingPrecision? _precision;
    private Bagel.Models.Lora.LoraOptions? _lora;
    private Bagel.Core.Distributed.IProcessGroup? _processGroup;
    private Sharding.ShardingMode? _sharding;

    /// <summary>
    /// Shards the training state over the process group's ranks (docs/sharding.md):
    /// <see cref="Sharding.ShardingMode.OptimizerState"/> keeps each rank's AdamW moments and EMA for its 1/W of the
    /// parameters, <see cref="Sharding.ShardingMode.Gradients"/> also releases the whole gradient buffer after the
    /// reduce-scatter; <see cref="Sharding.ShardingMode.None"/> is plain data parallelism. Overrides <c>sharding_strategy</c>.
    /// <paramref name="shardRanks"/> (hybrid sharding) shards within groups of that many consecutive ranks and replicates
    /// across the groups; null shards over the whole world.
    /// </summary>
    public TrainerBuilder UseSharding(Sharding.ShardingMode mode, int? shardRanks = null)
    {
        if (shardRanks is <= 0) throw new ArgumentOutOfRangeException(nameof(shardRanks), shardRanks, "shardRanks must be positive.");
        _sharding = mode;
        _shardRanks = shardRanks;
        return this;
    }

    private int? _shardRanks;

    /// <summary>
    /// Trains data-parallel over <paramref name="group"/> (docs/distributed.md): rank 0's weights are broadcast, gradients
    /// averaged over ranks after backward, losses normalised by global token counts; only rank 0 writes metrics, logs
    /// steps and writes checkpoints (with every rank's data status). Default:
    /// <see cref="Distributed.DistributedRun.Current"/> (a single process unless the entry point set a group).
    /// </summary>
    public TrainerBuilder UseProcessGroup(Bagel.Core.Distributed.IProcessGroup group)
    {
        _processGroup = group ?? throw new ArgumentNullException(nameof(group));
        return this;
    }

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

    /// <summary>
    /// Where the loop, the checkpointer, the metric sinks it creates and the data pipeline's skip warnings log (the
    /// pipeline keeps a logger it was given). Default: stderr at Information in the reference's line format
    /// (<see cref="ReferenceFormatLoggerProvider"/>; colour codes only on a terminal). Pass
    /// <c>NullLoggerFactory.Instance</c> for silence. The caller disposes <paramref name="loggerFactory"/>.
    /// </summary>
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
    /// Device, parameter dtype and torch's CPU thread counts (default: CPU, float32, libtorch's thread defaults). Build
    /// checks the device exists and applies the thread counts; the model's parameters must already be on the device
    /// (batches are moved there step by step, through pinned memory and a non-blocking copy on CUDA). A <c>DType</c> of
    /// <c>bfloat16</c> means bf16 mixed precision (<see cref="UsePrecision"/>): the model's parameters stay float32
    /// masters; float16 does not train.
    /// </summary>
    public TrainerBuilder UseCompute(ComputeOptions compute)
    {
        _compute = compute ?? throw new ArgumentNullException(nameof(compute));
        return this;
    }

    /// <summary>
    /// How the forward and backward passes compute: <see cref="Precision.TrainingPrecision.Bf16Mixed"/> runs them on a
    /// bf16 working copy over float32 master weights, AdamW state and EMA (the reference's FSDP mixed precision, with its
    /// float32 islands); <see cref="Precision.TrainingPrecision.Fp32"/> trains in float32. Default: the configuration's
    /// <c>precision</c> flag (<c>auto</c>: bf16 on CUDA, fp32 on the CPU), or bf16 when <see cref="UseCompute"/> names
    /// <c>bfloat16</c>. The model given to <see cref="UseModel"/> stays float32 either way (docs/precision.md).
    /// </summary>
    public TrainerBuilder UsePrecision(Precision.TrainingPrecision precision)
    {
        _precision = precision;
        return this;
    }

    /// <summary>
    /// Sets torch's intra-op CPU thread count for the run (a shortcut for <see cref="UseCompute"/>'s <c>CpuThreads</c>).
    /// The trainer holds it around every step and evaluation, whatever thread runs them, and puts each thread's own count
    /// back afterwards; building the trainer does not change the calling thread's count. Unset: the count of the thread
    /// that builds the trainer, held the same way.
    /// </summary>
    public TrainerBuilder UseCpuThreads(int threads)
    {
        _compute.CpuThreads = threads;
        return this;
    }

    /// <summary>
    /// Replaces the schedule chosen by <c>lr_scheduler</c> (constant or cosine with warm-up) with
    /// <paramref name="schedule"/>: its multiplier of step k scales every group's base learning rate, applied as the
    /// reference's LambdaLR (already for step 0), and resumes from the saved step.
    /// </summary>
    public TrainerBuilder UseLearningRateSchedule(ILearningRateSchedule schedule)
    {
        _schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));
        return this;
    }

    /// <summary>
    /// Splits the model's parameters into AdamW groups with their own learning rate or weight decay (default: one
    /// group with every trainable parameter, as the reference). Parameters that do not require grad are left out;
    /// a parameter in no group is not trained.
    /// </summary>
    public TrainerBuilder UseParameterGroups(Func<torch.nn.Module, IEnumerable<ParameterGroup>> groups)
    {
        _parameterGroups = groups ?? throw new ArgumentNullException(nameof(groups));
        return this;
    }

    /// <summary>
    /// Steps AdamW on flat buffers (<see cref="FlatBufferAdamW"/>: bit-identical to TorchSharp's AdamW, fewer kernel
    /// launches; the default), or, with <paramref name="enabled"/> false, TorchSharp's per-tensor AdamW. The EMA
    /// update follows: one fused update per flat buffer, or one per tensor. Checkpoints are the same either way, and
    /// either can resume the other's.
    /// </summary>
    public TrainerBuilder UseFlatBufferOptimizer(bool enabled = true)
    {
        _flatBufferOptimizer = enabled;
        return this;
    }

    /// <summary>
    /// Trains LoRA adapters on the frozen model instead of the model itself (<see cref="Lora.LoraTrainableModel"/>):
    /// <see cref="Build"/> attaches them to the model's matching Linear layers, and the optimizer, EMA and checkpoints
    /// then hold the adapters only. Without this call the <c>lora_*</c> flags decide (<c>lora_rank</c> &gt; 0 turns it
    /// on). The adapters stay attached after the run; <see cref="LoraModel"/> holds them.
    /// </summary>
    public TrainerBuilder UseLora(Bagel.Models.Lora.LoraOptions options)
    {
        _lora = options ?? throw new ArgumentNullException(nameof(options));
        return this;
    }

    /// <summary>The model with its LoRA adapters after <see cref="Build"/> when LoRA is on (the caller disposes it to
    /// detach the adapters); null otherwise.</summary>
    public Lora.LoraTrainableModel? LoraModel { get; private set; }

    /// <summary>
    /// Adds a sink that receives every logged step's metrics (flushed at each checkpoint; the caller disposes it).
    /// Before the first step the trainer calls its <see cref="IMetricSink.DiscardFromStepAsync"/> with the run's first
    /// step, so a resumed run records each step once. Adding a sink turns off the default sinks.
    /// </summary>
    public TrainerBuilder AddMetricSink(IMetricSink sink)
    {
        _sinks.Add(sink ?? throw new ArgumentNullException(nameof(sink)));
        return this;
    }

    /// <summary>
    /// Whether a run without any <see cref="AddMetricSink"/> writes <c>&lt;results_dir&gt;/metrics.jsonl</c>
    /// (<see cref="JsonlMetricSink"/>) and TensorBoard events in <c>&lt;results_dir&gt;/tensorboard</c>
    /// (<see cref="TensorBoardMetricSink"/>), owned and disposed by the trainer. Default true; pass false to write no
    /// metric files. Sinks added with <see cref="AddMetricSink"/> always replace the defaults.
    /// </summary>
    public TrainerBuilder UseDefaultMetricSinks(bool enabled = true)
    {
        _defaultMetricSinks = enabled;
        return this;
    }

    /// <summary>
    /// Stops gracefully on the first SIGINT (Ctrl+C) or SIGTERM (<c>kill</c>, a scheduler's or container's stop) while
    /// <see cref="Trainer.RunAsync"/> runs: the signal's default action is cancelled, the step in progress finishes, a
    /// final checkpoint is written, and the run returns with <see cref="TrainingRunResult.Cancelled"/> set and
    /// <see cref="TrainingRunResult.StopSignal"/> naming the signal (exit with <c>128 + signal number</c>, 130 or 143,
    /// to tell a scheduler so). A second signal ends the process at once. Default off: the process's own handling.
    /// </summary>
    public TrainerBuilder StopOnSignals(bool enabled = true)
    {
        _stopOnSignals = enabled;
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

    /// <summary>
    /// Evaluates <paramref name="set"/> every <paramref name="everySteps"/> completed steps and at the end of the run
    /// (not after a stop request): per group the validation MSE and CE, logged as
    /// <c>(step=0000020) Validation t2i_pretrain mse: 0.4123, ce: 0.0000</c>, written to every metric sink as
    /// <c>val/{group}/mse</c> and <c>val/{group}/ce</c> (step = completed steps), and passed to the <see cref="OnEval"/>
    /// callbacks. Evaluation runs without gradients in eval mode with fixed noise and leaves torch's global generator
    /// as it found it, so training (and exact resume) is unchanged by it. The caller disposes the set after the run.
    /// </summary>
    /// <param name="set">The validation set (see <see cref="ValidationSetFactory"/>).</param>
    /// <param name="everySteps">Steps between evaluations; 0 evaluates at every checkpoint (<c>save_every</c>). Default
    /// (null): the configuration's <c>validate_every</c>, whose default is 0.</param>
    public TrainerBuilder UseValidation(ValidationSet set, int? everySteps = null)
    {
        _validationSet = set ?? throw new ArgumentNullException(nameof(set));
        _validateEvery = everySteps;
        return this;
    }

    /// <summary>
    /// Renders fixed prompts, edits and questions with the EMA weights every <see cref="ValidationImageOptions.EverySteps"/>
    /// completed steps (0: at every checkpoint) and at the end of the run (not after a stop request) into
    /// <c>&lt;results_dir&gt;/validation/step_NNNNNNN.png</c> (a grid: each prompt drawn under its image, each edit's input
    /// beside its output, each question's picture with the question and the answer), <c>step_NNNNNNN_answers.txt</c>
    /// and <c>step_NNNNNNN.json</c> (the entries, answers and sampler settings), all written atomically, and logs the
    /// grid to every metric sink that takes images (TensorBoard: tag <c>val/images</c>). The model must be a
    /// <see cref="Models.BagelTrainingModel"/> with <c>visual_gen</c>; with <see cref="UseLora"/> its base renders with
    /// the adapters attached (the EMA adapters swapped in for the render). Training is unchanged by it (own seeded
    /// noise; modes, torch's global generator and the live adapter weights restored). See <c>docs/generation.md</c>.
    /// </summary>
    /// <param name="options">The prompts, the tokenizer and the settings.</param>
    public TrainerBuilder UseValidationImages(ValidationImageOptions options)
    {
        _validationImages = options ?? throw new ArgumentNullException(nameof(options));
        return this;
    }

    /// <summary>Called after every validation evaluation, on the loop's thread (needs <see cref="UseValidation"/>).</summary>
    public TrainerBuilder OnEval(Action<ValidationReport> callback)
    {
        _onEval.Add(callback ?? throw new ArgumentNullException(nameof(callback)));
        return this;
    }

    /// <summary>
    /// Describes a model built in code (sizes, vocabulary, tokenizer) for <c>run_info.json</c> in every checkpoint, where
    /// the configuration's model paths do not say what was trained. Default: none.
    /// </summary>
    public TrainerBuilder DescribeModel(IReadOnlyDictionary<string, string> description)
    {
        _modelDescription = description ?? throw new ArgumentNullException(nameof(description));
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
        failures.AddRange(_compute.Validate().Select(f => "UseCompute: " + f));
        Precision.TrainingPrecision precision = ResolvePrecision(failures);
        ValidationPlan? validation = ResolveValidation(failures);
        Bagel.Models.Lora.LoraOptions? lora = _lora ?? (Lora.LoraFlags.Enabled(_configuration.Training) ? Lora.LoraFlags.ToOptions(_configuration.Training) : null);
        if (_lora is not null) failures.AddRange(_lora.Validate().Select(f => "UseLora: " + f));
        ValidationImageOptions? validationImages = ResolveValidationImages(failures);
        if (failures.Count > 0) throw new InvalidTrainingOptionsException(failures);
        ComputeSelection compute = ApplyCompute(_compute, _model!.Module);
        ITrainableModel model = _model!;
        if (lora is not null)
        {
            LoraModel?.Dispose();
            LoraModel = new Lora.LoraTrainableModel(_model!, lora);
            model = LoraModel;
        }

        var owned = new List<object>();
        ILoggerFactory loggerFactory = _loggerFactory ?? Own(owned, DefaultConsoleLogging.Create());
        ILogger logger = loggerFactory.CreateLogger<Trainer>();
        _pipeline?.Skips.AttachLogger(loggerFactory.CreateLogger("Bagel.Data"));
        List<IMetricSink> sinks = [.. _sinks];
        string resultsDir = _configuration.Training.ResultsDir;
        if (sinks.Count == 0 && _defaultMetricSinks && !string.IsNullOrWhiteSpace(resultsDir))
        {
            ILogger sinkLogger = loggerFactory.CreateLogger("Bagel.Training.Metrics");
            sinks.Add(Own(owned, new JsonlMetricSink(Path.Combine(resultsDir, JsonlMetricSink.DefaultFileName), sinkLogger)));
            sinks.Add(Own(owned, new TensorBoardMetricSink(Path.Combine(resultsDir, DefaultTensorBoardFolder), sinkLogger)));
            LogDefaultSinks(logger, Path.GetFullPath(resultsDir));
        }
        foreach (string warning in TrainingPlanWarnings.For(_configuration, compute.Device, _schedule is not null))
            LogPlanWarning(logger, warning);

        int numWorkers = _configuration.Data.NumWorkers;
        TrainingDataSource data = _pipeline is not null
            ? TrainingDataSource.FromPipeline(_pipeline, numWorkers)
            : _source! with { NumWorkers = numWorkers };
        return new Trainer(new TrainerSettings(model, data, _configuration, sinks, [.. _onStep], [.. _onSave],
            logger, _time, _flops ?? NoFlops, _maxConsecutiveNonFinite, _keepLast,
            compute, _schedule, _parameterGroups, validation, _flatBufferOptimizer, _modelDescription, precision, _stopOnSignals, owned, _processGroup, validationImages) { Sharding = _sharding, ShardRanks = _shardRanks, CpuThreads = _compute.CpuThreads });
    }

    /// <summary>The folder under <c>results_dir</c> the default TensorBoard sink writes to.</summary>
    public const string DefaultTensorBoardFolder = "tensorboard";

    private static T Own<T>(List<object> owned, T item) where T : notnull
    {
        owned.Add(item);
        return item;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Warning}")]
    private static partial void LogPlanWarning(ILogger logger, string warning);

    [LoggerMessage(Level = LogLevel.Information, Message = "Metrics go to {ResultsDir}/metrics.jsonl and {ResultsDir}/tensorboard (no sink was added; UseDefaultMetricSinks(false) turns this off).")]
    private static partial void LogDefaultSinks(ILogger logger, string resultsDir);

    /// <summary>Applies the compute options and checks that the model lives on the chosen device.</summary>
    private static ComputeSelection ApplyCompute(ComputeOptions options, torch.nn.Module model)
    {
        ComputeSelection selection;
        try
        {
            // torch's intra-op count belongs to the OS thread (OpenMP's setting): the trainer holds it around every step
            // instead, so building a trainer leaves the calling thread's count as it was.
            var process = new ComputeOptions { Device = options.Device, DType = options.DType, InteropThreads = options.InteropThreads };
            selection = process.Apply();
            if (options.CpuThreads is int threads) selection = selection with { CpuThreads = threads };
        }
        catch (ComputeSettingException e)
        {
            throw new InvalidTrainingOptionsException([$"UseCompute: {e.Message}"]);
        }
        foreach ((string name, TorchSharp.Modules.Parameter parameter) in model.named_parameters())
        {
            if (parameter.device.type != selection.Device.type || (selection.Device.type != DeviceType.CPU && parameter.device.index != selection.Device.index))
                throw new InvalidTrainingOptionsException([$"UseCompute: the model's parameter '{name}' is on {parameter.device}, not on {selection.Device}; move the model with .to(device) first."]);
        }
        return selection;
    }

    /// <summary>The training precision from <see cref="UsePrecision"/>, the compute dtype and the <c>precision</c> flag,
    /// adding conflicts to <paramref name="failures"/>.</summary>
    private Precision.TrainingPrecision ResolvePrecision(List<string> failures)
    {
        bool computeValid = _compute.Validate().Count == 0;
        torch.ScalarType dtype = computeValid ? DTypeNames.Parse(_compute.DType) : torch.ScalarType.Float32;
        torch.Device device = computeValid ? DeviceNames.Parse(_compute.Device) : torch.CPU;
        if (dtype is not (torch.ScalarType.Float32 or torch.ScalarType.BFloat16))
        {
            failures.Add($"UseCompute: DType '{_compute.DType}' does not train; use float32, or bfloat16 for bf16 mixed precision over float32 master weights.");
            return Precision.TrainingPrecision.Fp32;
        }
        if (dtype == torch.ScalarType.BFloat16)
        {
            if (_precision == Precision.TrainingPrecision.Fp32)
                failures.Add($"UseCompute: DType '{_compute.DType}' asks for bf16 but UsePrecision(Fp32) was called; drop one of them.");
            return Precision.TrainingPrecision.Bf16Mixed;
        }
        if (_precision is { } chosen) return chosen;
        // An invalid flag is reported by the configuration's validator.
        return Precision.TrainingPrecisionNames.TryParse(_configuration.Training.Precision, device, out Precision.TrainingPrecision fromFlag)
            ? fromFlag
            : Precision.TrainingPrecision.Fp32;
    }

    /// <summary>The validation plan, adding its problems to <paramref name="failures"/>; null without a set.</summary>
    private ValidationPlan? ResolveValidation(List<string> failures)
    {
        if (_validationSet is null)
        {
            if (_onEval.Count > 0) failures.Add("OnEval callbacks were added but no validation set: call UseValidation(ValidationSet).");
            return null;
        }
        int every = _validateEvery ?? _configuration.Training.ValidateEvery; // a bad configured value is reported by its validator
        if (_validateEvery is < 0) failures.Add($"UseValidation: every {every} steps must be 0 (at every checkpoint) or more.");
        failures.AddRange(_validationSet.Problems());
        return new ValidationPlan(_validationSet, every > 0 ? every : Math.Max(1, _configuration.Training.SaveEvery), [.. _onEval]);
    }

    /// <summary>The validation-image options with the output folder and seed filled in; null when off.</summary>
    private ValidationImageOptions? ResolveValidationImages(List<string> failures)
    {
        if (_validationImages is not { } options) return null;
        if (RenderableModel(_model) is not { Vae: not null } bagel || !bagel.Model.Config.VisualGen)
            failures.Add("UseValidationImages: the model must be a BagelTrainingModel (or LoRA adapters on one) with visual_gen and its VAE (it renders images).");
        if (options.Prompts is null || options.Prompts.Count == 0) failures.Add("UseValidationImages: no prompts; give at least one.");
        if (options.EverySteps < 0) failures.Add($"UseValidationImages: every {options.EverySteps} steps must be 0 (at every checkpoint) or more.");
        string? folder = options.OutputFolder;
        if (string.IsNullOrWhiteSpace(folder))
        {
            if (string.IsNullOrWhiteSpace(_configuration.Training.ResultsDir)) failures.Add("UseValidationImages: no OutputFolder and 'results_dir' is empty.");
            else folder = Path.Combine(_configuration.Training.ResultsDir, DefaultValidationImagesFolder);
        }
        try
        {
            options.Generation?.Validate();
        }
        catch (ArgumentException e)
        {
            failures.Add($"UseValidationImages: {e.Message}");
        }
        return options with { OutputFolder = folder, Seed = options.Seed ?? _configuration.Training.GlobalSeed };
    }

    /// <summary>The BAGEL composite validation images render with: the model itself, or the base of LoRA adapters; null otherwise.</summary>
    internal static Models.BagelTrainingModel? RenderableModel(ITrainableModel? model) => model switch
    {
        Models.BagelTrainingModel bagel => bagel,
        Lora.LoraTrainableModel lora => lora.BaseModel as Models.BagelTrainingModel,
        _ => null,
    };

    /// <summary>The folder under <c>results_dir</c> validation images go to by default.</summary>
    public const string DefaultValidationImagesFolder = "validation";

    /// <summary>Sizes that count no FLOPs, for runs without a language-model config.</summary>
    private static readonly Qwen2FlopConfig NoFlops = new(HiddenSize: 0, IntermediateSize: 0, NumHiddenLayers: 0, NumAttentionHeads: 1, NumKeyValueHeads: 1, VocabSize: 0);
}
