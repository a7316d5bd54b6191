using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;
using Bagel.Training.Checkpoints;
using Bagel.Training.Distributed;
using Bagel.Training.Ema;
using Bagel.Training.Loss;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Bagel.Training.Precision;
using Bagel.Training.Schedules;
using Bagel.Training.Sharding;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Loop;

/// <summary>
/// The stateful pieces of one training run, built from the reference's flags and owned in one place: the AdamW
/// optimizer, the learning-rate scheduler, the EMA copy, the loop's RNG streams, the non-finite step guard, the
/// optimizer stepper and the checkpointer. <see cref="Trainer"/> runs on a session; a loop of your own builds one and
/// makes the same three calls, so both read and write the same checkpoints:
/// <list type="number">
/// <item><see cref="Restore(CancellationToken)"/> once, before the first step: seeds torch's global generator, then
/// loads what <c>auto_resume</c> / <c>resume_from</c> point at (weights, EMA, optimizer, schedule, RNG states, counters)
/// and hands back the data status to start the data pipeline from;</item>
/// <item><see cref="Stepper"/>'s <c>Step</c> after the backward of each step's last micro-batch (clip, NaN guard,
/// AdamW, schedule, EMA, zero grad);</item>
/// <item><see cref="Save"/> every <c>save_every</c> steps and at the end, with the data pipeline's status.</item>
/// </list>
/// The model (and the VAE inside it) belongs to the caller; <see cref="Dispose"/> releases what the session created.
/// See <c>docs/custom-loop.md</c>.
/// </summary>
public sealed partial class TrainingSession : IDisposable
{
    private readonly TrainingCheckpointer _checkpointer;
    private readonly ILogger? _logger;
    private readonly EmaModel? _ema;
    private readonly ShardedOptimizer? _sharded;
    private readonly ShardedCheckpoint? _shardedCheckpoint;
    private readonly Bagel.Core.Distributed.HybridShardGroups? _hybrid;
    private bool _restored;

    /// <summary>
    /// Builds the optimizer (AdamW from <c>lr</c>, <c>beta1</c>, <c>beta2</c>, <c>eps</c>, <c>weight_decay</c>), the schedule
    /// (<c>lr_scheduler</c>, <c>warmup_steps</c>, <c>total_steps</c>, <c>min_lr</c>), the EMA copy (decay <c>ema</c>, built
    /// with <see cref="ITrainableModel.CreateTwin"/>), the RNG streams (<c>global_seed</c>) and the checkpointer
    /// (<c>checkpoint_dir</c>). Building the EMA twin draws from torch's global generator; <see cref="Restore(CancellationToken)"/>
    /// reseeds it afterwards, so nothing drawn before it matters.
    /// </summary>
    /// <param name="model">The model to train; its trainable parameters are what the optimizer updates.</param>
    /// <param name="configuration">The reference's flags (validated here; every bad value is reported at once).</param>
    /// <param name="options">The choices beyond the flags (default: the reference's behaviour).</param>
    /// <param name="logger">Receives the resume plan, skipped steps and checkpoint lines; optional.</param>
    /// <exception cref="InvalidTrainingOptionsException">A flag is invalid.</exception>
    public TrainingSession(ITrainableModel model, TrainingConfiguration configuration, TrainingSessionOptions? options = null, ILogger? logger = null)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Configuration = (configuration ?? throw new ArgumentNullException(nameof(configuration))).ValidateOrThrow();
        options ??= new TrainingSessionOptions();
        _logger = logger;
        TrainingOptions training = configuration.Training;
        LossWeights = LossWeights.FromOptions(training);
        Streams = new RandomStreams(training.GlobalSeed);
        Parallel = new DataParallel(options.ProcessGroup ?? DistributedRun.Current, model.Module);
        int world = Parallel.Group.WorldSize;
        (ShardingMode mode, int shardRanks, string description) = options.Sharding is { } chosen
            ? (chosen, options.ShardRanks ?? world, $"Sharding mode {chosen} over groups of {options.ShardRanks ?? world} of {world} rank(s) (set in code).")
            : ShardingModes.FromFlags(training, world);
        if (options.Sharding is null && training.ShardingStrategy == "HYBRID_SHARD" && mode != ShardingMode.None
            && (options.Precision != TrainingPrecision.Fp32 || options.ParameterGroups is not null))
        {
            // The reference's default, which a bf16 run or one with custom parameter groups cannot shard yet: such a run
            // keeps the whole state on every rank rather than failing; naming a sharded strategy refuses it instead.
            string why = options.ParameterGroups is not null ? "custom parameter groups" : $"precision {options.Precision}";
            (mode, shardRanks, description) = (ShardingMode.None, world,
                $"sharding_strategy HYBRID_SHARD (the reference's default) runs as plain data parallelism: sharded training does not support {why} yet (docs/sharding.md).");
        }
        Sharding = mode;
        if (logger is not null && (mode != ShardingMode.None || Parallel.IsDistributed)) LogSharding(logger, description);
        var adamW = AdamWOptions.FromTrainingOptions(training);
        adamW.FlatBuffers = options.FlatBufferOptimizer;
        if (mode != ShardingMode.None)
        {
            if (options.ParameterGroups is not null) throw new NotSupportedException($"Sharded training ({mode}) steps one AdamW group; custom parameter groups need sharding_strategy NO_SHARD.");
            if (options.Precision != TrainingPrecision.Fp32) throw new NotSupportedException($"Sharded training ({mode}) runs in precision fp32 so far; {options.Precision} needs sharding_strategy NO_SHARD.");
            if (training.CpuOffload)
            {
                // The shards live where the parameters do: on a CPU run that is host memory already; moving CUDA shards to
                // the host (and the gathers back) is not built yet.
                if (model.Module.parameters().Any(p => p.device_type != DeviceType.CPU))
                    throw new NotSupportedException("cpu_offload with CUDA parameters (sharded master weights and AdamW state in host memory) is not built yet; leave cpu_offload false.");
                if (logger is not null) LogSharding(logger, "cpu_offload: the sharded master weights, AdamW state and EMA are in host memory already (a CPU run).");
            }
            // Hybrid: shard within groups of shardRanks consecutive ranks, replicate across them (process sub-groups).
            if (shardRanks < world) _hybrid = Bagel.Core.Distributed.SubGroupExtensions.CreateHybridShardGroups(Parallel.Group, shardRanks);
            _sharded = new ShardedOptimizer(Parallel.Group, model.Module, mode, adamW, training.Ema, logger, _hybrid);
            _shardedCheckpoint = new ShardedCheckpoint(_sharded, model.Module);
        }
        else _ema = EmaModel.Create(model.Module, model.CreateTwin, training.Ema, fused: options.FlatBufferOptimizer);
        try
        {
            Precision = PrecisionPolicies.Create(options.Precision, model);
        }
        catch
        {
            _ema?.Dispose(); // a model without a bf16 working copy, or with non-float32 weights
            _sharded?.Dispose();
            _hybrid?.Dispose();
            throw;
        }
        Optimizer = _sharded?.Optimizer ?? (options.ParameterGroups is { } groups
            ? AdamWFactory.Create(groups(model.Module), adamW)
            : AdamWFactory.Create(model.Module, adamW));
        Scheduler = new LearningRateScheduler(Optimizer, options.Schedule ?? LearningRateSchedules.FromOptions(training));
        Guard = new NonFiniteStepGuard(options.MaxConsecutiveNonFiniteSteps);
        IExponentialMovingAverage ema = (IExponentialMovingAverage?)_sharded?.Ema ?? _ema!;
        Stepper = new OptimizerStepper(Optimizer, Scheduler, ema, Guard, training.MaxGradNorm, logger, _sharded);
        var components = new TrainingComponents(model.Module, Optimizer, Scheduler, ema, Streams, Guard, RunInfo.Capture(configuration, options.ModelDescription), _shardedCheckpoint);
        var writer = new CheckpointWriter(new CheckpointOptions { CheckpointDir = training.CheckpointDir, KeepLast = options.KeepLastCheckpoints }, logger);
        _checkpointer = new TrainingCheckpointer(writer, components, logger, options.Time);
    }

    /// <summary>The model being trained (the caller's; not disposed here).</summary>
    public ITrainableModel Model { get; }

    /// <summary>
    /// Where the forward and backward passes run (<see cref="TrainingSessionOptions.Precision"/>): per micro-batch call
    /// <see cref="IPrecisionPolicy.BeforeForward"/>, run <c>Precision.ComputeModel.Forward</c> and the backward, then
    /// <see cref="IPrecisionPolicy.AfterBackward"/>; the <see cref="Stepper"/> then updates the float32 master weights.
    /// </summary>
    public IPrecisionPolicy Precision { get; }

    /// <summary>The flags this session was built from.</summary>
    public TrainingConfiguration Configuration { get; }

    /// <summary>The loss weights from <c>ce_weight</c>, <c>mse_weight</c>, <c>ce_loss_reweighting</c> and <c>gradient_accumulation_steps</c>, for <c>TrainingLoss.Combine</c>.</summary>
    public LossWeights LossWeights { get; }

    /// <summary>
    /// The data-parallel ranks (a single process by default): rank 0's weights are broadcast at <see cref="Restore(CancellationToken)"/>;
    /// a loop calls <see cref="DataParallel.AllReduceGradients"/> after backward and normalises its losses with
    /// <see cref="DataParallel.GlobalNormalizers"/>; <see cref="Save"/> gathers every rank's data status and rank 0 writes.
    /// </summary>
    public DataParallel Parallel { get; }

    /// <summary>What is sharded over the ranks (<see cref="ShardingMode.None"/>: plain data parallelism).</summary>
    public ShardingMode Sharding { get; }

    /// <summary>The sharded optimizer of a sharded run (its layout, master shard, EMA shard), or null.</summary>
    public ShardedOptimizer? ShardedOptimizer => _sharded;

    /// <summary>The sharded checkpoint glue of a sharded run (with its measured gather peak), or null.</summary>
    public ShardedCheckpoint? ShardedCheckpoint => _shardedCheckpoint;

    /// <summary>
    /// What a loop calls once per step after the last backward: <see cref="Parallel"/> (gradients averaged over the
    /// ranks) or, in a sharded run, <see cref="ShardedOptimizer"/> (gradients reduce-scattered into each rank's shard).
    /// </summary>
    public IGradientSynchronizer Gradients => (IGradientSynchronizer?)_sharded ?? Parallel;

    /// <summary>The AdamW optimizer over the model's trainable parameters (saved as <c>optimizer.safetensors</c>).</summary>
    public AdamW Optimizer { get; }

    /// <summary>The learning-rate scheduler; its step counter is saved and checked against the train state.</summary>
    public LearningRateScheduler Scheduler { get; }

    /// <summary>The EMA copy of the model (saved as <c>ema.safetensors</c>); updated by <see cref="Stepper"/> after every applied step.</summary>
    /// <exception cref="InvalidOperationException">A sharded run: each rank keeps only its shard of the EMA (<see cref="ShardedOptimizer"/>).</exception>
    public EmaModel Ema => _ema ?? throw new InvalidOperationException($"This run shards its EMA over the ranks ({Sharding}); no rank holds a whole EMA module. Read ema.safetensors of a checkpoint instead.");

    /// <summary>The loop's named RNG streams from <c>global_seed</c>; saved with torch's global generator in every checkpoint.</summary>
    public RandomStreams Streams { get; }

    /// <summary>The NaN/Inf guard; its counters go into the train state.</summary>
    public NonFiniteStepGuard Guard { get; }

    /// <summary>One optimizer step after backward: clip to <c>max_grad_norm</c>, NaN guard, AdamW, schedule, EMA, zero grad.</summary>
    public OptimizerStepper Stepper { get; }

    /// <summary>
    /// Seeds torch's global generator from <c>global_seed</c> (as the reference's <c>set_seed</c> before training) and
    /// restores the run that <c>auto_resume</c>, <c>resume_from</c>, <c>resume_model_only</c> and <c>finetune_from_ema</c>
    /// choose (see <see cref="ResumePlanner"/>). Call it once, after building the data pipeline and before the first step.
    /// </summary>
    /// <param name="cancellationToken">Stops loading between tensors.</param>
    /// <returns>The counters to continue from and the data status to start the data after.</returns>
    /// <exception cref="CheckpointException">The checkpoint to resume from is missing a file or does not fit the model.</exception>
    /// <remarks>Under <c>auto_resume</c> a damaged checkpoint (truncated or unreadable file, missing file or tensor) is
    /// skipped with a warning naming it and why, and the newest intact one is restored instead.</remarks>
    public TrainingResume Restore(CancellationToken cancellationToken = default) =>
        RestoreWith(() => _checkpointer.RestoreFromOptions(Configuration.Training, cancellationToken));

    /// <summary>As <see cref="Restore(CancellationToken)"/>, from an explicit <paramref name="plan"/> instead of the flags.</summary>
    /// <param name="plan">What to load from where.</param>
    /// <param name="cancellationToken">Stops loading between tensors.</param>
    /// <returns>The counters to continue from and the data status to start the data after.</returns>
    /// <exception cref="CheckpointException">The checkpoint is missing a file or does not fit the model.</exception>
    public TrainingResume Restore(ResumePlan plan, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return RestoreWith(() => _checkpointer.Restore(plan, cancellationToken));
    }

    private TrainingResume RestoreWith(Func<RestoreResult> restore)
    {
        if (_restored) throw new InvalidOperationException("A session restores once, before its first step; build a new session to restore again.");
        _restored = true;
        // The reference's per-rank seed (global_seed · world_size + rank). The loop's named streams are the same on every
        // rank (rank 0's, which the checkpoint holds); the data pipeline keeps its own per-rank streams in the data status.
        var group = Parallel.Group;
        TorchGlobalRandom.Seed(SeedDerivation.ReferenceRankSeed(Streams.Seed, group.WorldSize, group.Rank), group.Rank, _logger);
        RestoreResult restored = restore();
        // The flat optimizer hands out views of its gradient buffers, so autograd accumulates into them from step 0.
        if (Optimizer is FlatBufferAdamW flat) flat.AttachGradients();
        if (_sharded is null)
        {
            MaterializeGradients(Model.Module);
            Parallel.BroadcastFromRankZero(Model.Module, Ema.Module); // every rank starts from rank 0's weights (fresh or resumed)
        }
        else
        {
            // The EMA shards were read from the file by each rank (or start from the weights): only the model is broadcast.
            Parallel.BroadcastFromRankZero(Model.Module);
            _sharded.ParametersChanged();
        }
        Precision.MasterWeightsChanged();
        // A sharded run may resume with another world size (its optimizer shards are re-sliced); its data positions then
        // follow the reference's inexact fallback (logged). Plain data parallelism keeps the strict check.
        RankDataStatus? data = restored.DataStatus?.ForResume(group.Rank, group.WorldSize, Configuration.Data.NumWorkers, allowInexact: _sharded is not null, logger: _logger);
        var progress = new TrainProgress(restored.StartStep, restored.State?.TokensSeen ?? 0, restored.State?.SamplesSeen ?? 0);
        return new TrainingResume(progress, data, restored);
    }

    /// <summary>
    /// Gives every trainable parameter that has no gradient yet a zero one, before the first step. Gradients are zeroed,
    /// never dropped, after each step, so without this a parameter that a step's batch does not reach (the generation
    /// head in a text-only step) would be skipped by AdamW until its first gradient and stepped with zeros after it: a
    /// resumed run, whose fresh parameters start without gradients, would then update differently from the run it
    /// continues. With it, every trainable parameter is stepped from step 0, as the reference's FSDP units step their
    /// whole flat parameter, and a resume continues bit for bit whatever the data of its first step.
    /// </summary>
    private static void MaterializeGradients(torch.nn.Module module)
    {
        using var noGrad = torch.no_grad();
        foreach (var parameter in module.parameters())
        {
            if (!parameter.requires_grad) continue;
            using (torch.Tensor? grad = parameter.grad)
            {
                if (grad is not null) continue;
            }
            using torch.Tensor zero = torch.zeros_like(parameter);
            parameter.grad = zero;
        }
    }

    /// <summary>
    /// Writes the checkpoint of <paramref name="progress"/> (folder named after its completed steps under
    /// <c>checkpoint_dir</c>, atomically): model, EMA, optimizer, schedule, RNG states, train state, run info and, when
    /// given, <paramref name="dataStatus"/> saved for <c>num_workers</c> workers. It is the layout the
    /// <see cref="Trainer"/> writes and reads, so either can resume the other's checkpoints.
    /// </summary>
    /// <param name="progress">The counters after the last completed step.</param>
    /// <param name="dataStatus">The data pipeline's status after the last batch taken (<c>DataPipeline.CaptureStatus()</c>);
    /// null saves none, and a resume then restarts the data from its beginning.</param>
    /// <param name="cancellationToken">Stops the write between files (nothing half-written stays); a sharded run's save, in
    /// which every rank takes part, is not cancellable once started.</param>
    /// <returns>The folder written.</returns>
    public CheckpointInfo Save(TrainProgress progress, RankDataStatus? dataStatus, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(progress);
        // Every rank's status goes to rank 0, which alone writes (the weights and optimizer state are the same on every rank).
        DataStatusDocument? document = Parallel.GatherDataStatus(dataStatus, Configuration.Data.NumWorkers);
        var folder = new CheckpointInfo(progress.CompletedSteps, Path.Combine(Path.GetFullPath(Configuration.Training.CheckpointDir), CheckpointLayout.FolderName(progress.CompletedSteps)));
        if (_shardedCheckpoint is not null)
        {
            // Every rank takes part: optimizer shards, the streamed model and EMA (ShardedCheckpoint); rank 0 commits.
            // Not cancellable: a rank that stopped between files would leave the others waiting in a collective.
            if (Parallel.Group.Rank == 0) folder = _checkpointer.Save(progress, document, CancellationToken.None);
            else _shardedCheckpoint.FollowSave(progress.CompletedSteps);
            Parallel.Group.Barrier(); // every rank returns once the folder is in place
            return folder;
        }
        if (Parallel.Group.Rank != 0) return folder;
        return _checkpointer.Save(progress, document, cancellationToken);
    }

    /// <summary>Disposes the EMA copy, the precision policy's working copy, the optimizer and the RNG streams (not the model).</summary>
    public void Dispose()
    {
        Parallel.Dispose();
        _ema?.Dispose();
        Precision.Dispose();
        if (_sharded is not null) _sharded.Dispose(); // disposes its optimizer
        else Optimizer.Dispose();
        _hybrid?.Dispose(); // the sub-groups, before the caller's world group
        Streams.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Description}")]
    private static partial void LogSharding(ILogger logger, string description);
}
