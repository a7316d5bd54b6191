using System.Diagnostics;
using Bagel.Core.Batching;
using Bagel.Core.Devices;
using Bagel.Core.Metrics;
using Bagel.Training.Checkpoints;
using Bagel.Training.Distributed;
using Bagel.Training.Logging;
using Bagel.Training.Loss;
using Bagel.Training.Metrics;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Bagel.Training.Validation;
using Bagel.Training.ValidationImages;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Loop;

/// <summary>
/// The training loop (training.md 5.4), read top to bottom in <see cref="RunAsync"/>: restore, then per step get the
/// micro-batches, forward, loss, backward, optimizer step (clip, NaN guard, AdamW, schedule, EMA), log, save. Build
/// one with <see cref="TrainerBuilder"/>. A trainer runs once; the stateful pieces (optimizer, schedule, EMA copy, RNG
/// streams, NaN guard, checkpointer) live in its <see cref="TrainingSession"/>, the same one a custom loop uses
/// (docs/custom-loop.md), so their checkpoints are interchangeable.
/// </summary>
public sealed partial class Trainer : IDisposable
{
    private readonly ITrainableModel _model;
    private readonly TrainingDataSource _data;
    private readonly TrainingConfiguration _config;
    private readonly TrainingOptions _options;
    private readonly IReadOnlyList<IMetricSink> _sinks;
    private readonly IReadOnlyList<Action<TrainingStepReport>> _onStep;
    private readonly IReadOnlyList<Action<CheckpointInfo>> _onSave;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TrainingSession _session;
    private readonly ThroughputWindow _throughput;
    private readonly ComputeSelection _compute;
    private readonly int _cpuThreads; // the count every step holds: UseCpuThreads, else the building thread's
    private readonly ValidationRunner? _validation;
    private readonly DeviceMemoryMonitor? _memory;
    private readonly ValidationImageRunner? _validationImages;
    private readonly bool _stopOnSignals;
    private readonly IReadOnlyList<object> _owned;
    private bool _started;
    private bool _stopAgreed; // data-parallel: a stop that every rank has seen, after the same step

    internal Trainer(TrainerSettings settings)
    {
        _model = settings.Model;
        _data = settings.Data;
        _config = settings.Configuration;
        _options = settings.Configuration.Training;
        _sinks = settings.Sinks;
        _onStep = settings.OnStep;
        _onSave = settings.OnSave;
        _logger = settings.Logger;
        _stopOnSignals = settings.StopOnSignals;
        _owned = settings.Owned ?? [];
        _time = settings.Time;
        _compute = settings.Compute;
        // Unnamed: the count of the thread that builds the run, held from then on (a pool thread that some other code
        // left at another count cannot change this run's reduction order, and so its last bits).
        _cpuThreads = settings.CpuThreads ?? torch.get_num_threads();
        _session = new TrainingSession(_model, _config, new TrainingSessionOptions
        {
            MaxConsecutiveNonFiniteSteps = settings.MaxConsecutiveNonFiniteSteps, KeepLastCheckpoints = settings.KeepLastCheckpoints,
            Schedule = settings.Schedule, ParameterGroups = settings.ParameterGroups, FlatBufferOptimizer = settings.FlatBufferOptimizer, Time = _time,
            ModelDescription = settings.ModelDescription, Precision = settings.Precision, ProcessGroup = settings.ProcessGroup, Sharding = settings.Sharding, ShardRanks = settings.ShardRanks,
        }, _logger);
        _throughput = new ThroughputWindow(settings.FlopConfig, _options.PeakDeviceTflops);
        _memory = DeviceMemoryMonitor.Create(_compute.Device, _logger); // null on the CPU: no memory figures there
        // Rank 0 evaluates and renders. Under parameter sharding every rank runs them too (each decoder layer's gather is a
        // collective of all ranks) and only rank 0 publishes the figures and files.
        bool main = _session.Parallel.Group.Rank == 0, everyRank = _session.ShardedOptimizer?.Mode == Sharding.ShardingMode.Parameters;
        _validation = settings.Validation is { } plan && (main || everyRank)
            ? new ValidationRunner(plan, _session.Precision, _session.LossWeights, _options.GlobalSeed, _logger, _sinks, _time, _cpuThreads, publish: main) : null;
        _validationImages = settings.ValidationImages is { } images && (main || everyRank) ? CreateValidationImages(images, publish: main) : null;
    }

    /// <summary>The validation-images runner (options resolved by the builder: folder, seed, every).</summary>
    private ValidationImageRunner CreateValidationImages(ValidationImageOptions options, bool publish)
    {
        Bagel.Training.Models.BagelTrainingModel bagel = TrainerBuilder.RenderableModel(_model)!; // checked by the builder
        var renderer = new ValidationImageRenderer(options, bagel.Vae!, _logger);
        if (options.UseEma && _session.ShardedOptimizer is { Mode: Sharding.ShardingMode.Parameters } full && _model is not Lora.LoraTrainableModel)
        {
            // Parameter sharding gathers every layer when it runs: it gathers the EMA shards for the render instead.
            return new ValidationImageRunner(options, options.EverySteps > 0 ? options.EverySteps : Math.Max(1, _options.SaveEvery), renderer,
                () => ValidationWeights.Full((Bagel.Models.Bagel.BagelModel)_model.Module, full.ComputeWithEma()), _sinks, _logger, _time, _cpuThreads, publish);
        }
        if (options.UseEma && _session.ShardedOptimizer is not null)
        {
            // A sharded run holds no whole EMA module (each rank has its shard): render the trained weights instead.
            if (publish) LogShardedEmaRender(_logger);
            options = options with { UseEma = false };
        }
        Func<ValidationWeights> weights = _model switch
        {
            // LoRA: the frozen base with the adapters attached; the EMA copy is an adapter set, swapped in for the render.
            Lora.LoraTrainableModel lora => () => ValidationWeights.Lora(bagel.Model, lora.Adapters,
                options.UseEma ? (Bagel.Models.Lora.LoraAdapterSet)_session.Ema.Module : null),
            _ => () => ValidationWeights.Full((Bagel.Models.Bagel.BagelModel)(options.UseEma ? _session.Ema.Module : _model.Module)),
        };
        return new ValidationImageRunner(options, options.EverySteps > 0 ? options.EverySteps : Math.Max(1, _options.SaveEvery), renderer, weights, _sinks, _logger, _time, _cpuThreads, publish);
    }

    /// <summary>The resolved configuration this trainer runs with.</summary>
    public TrainingConfiguration Configuration => _config;

    /// <summary>The EMA copy of the model (decay <c>ema</c>).</summary>
    public torch.nn.Module EmaModule => _session.Ema.Module;

    /// <summary>How the forward and backward passes compute (fp32, or bf16 over float32 master weights).</summary>
    public Precision.IPrecisionPolicy Precision => _session.Precision;

    /// <summary>Whether this process is rank 0 of its group (the one that writes metrics and checkpoints).</summary>
    private bool IsMainRank => _session.Parallel.Group.Rank == 0;

    /// <summary>A sharded run's checkpoint glue (its measured gather peak), or null (docs/sharding.md).</summary>
    public Sharding.ShardedCheckpoint? ShardedCheckpoint => _session.ShardedCheckpoint;

    /// <summary>A sharded run's optimizer (this rank's shard of the master weights, AdamW state and EMA, and under
    /// <see cref="Sharding.ShardingMode.Parameters"/> the per-layer gather figures); null in plain data parallelism.</summary>
    public Sharding.ShardedOptimizer? ShardedOptimizer => _session.ShardedOptimizer;

    /// <summary>The AdamW optimizer (for inspection; the loop steps it; a sharded run's covers this rank's shard only).</summary>
    public AdamW Optimizer => _session.Optimizer;

    /// <summary>
    /// Trains from the resumed step (or 0) up to <c>total_steps</c>. Cancelling <paramref name="cancellationToken"/>
    /// (or, with <see cref="TrainerBuilder.StopOnSignals"/>, a SIGINT or SIGTERM) lets the current step finish, then
    /// writes a final checkpoint and returns with <see cref="TrainingRunResult.Cancelled"/> set. Before the first step
    /// every metric sink forgets its records of that step and later, so a resumed run records each step once. The
    /// run's first step is always logged, then every <c>log_every</c>-th. Checkpoints are written every
    /// <c>save_every</c> completed steps and at the end; the checkpoint of N steps resumes with step N (0-based). With <c>UseValidation</c>, the validation set
    /// is evaluated after the scheduled steps and at the end (see <c>docs/validation.md</c>); with <c>UseValidationImages</c>, the
    /// validation prompts are rendered then too (see <c>docs/generation.md</c>); neither changes training.
    /// </summary>
    /// <exception cref="NonFiniteLossException">Too many NaN or infinite losses in a row (the last good checkpoint stays).</exception>
    /// <exception cref="CheckpointException">The checkpoint to resume from is missing a file or does not fit (under
    /// <c>auto_resume</c>: no checkpoint could be restored; damaged ones are skipped with a warning).</exception>
    public async Task<TrainingRunResult> RunAsync(CancellationToken cancellationToken = default)
    {
        if (_started) throw new InvalidOperationException("A Trainer runs once; build a new one (it resumes from the last checkpoint).");
        _started = true;

        TrainingResume resume = _session.Restore(cancellationToken); // seeds torch's generator, then weights, optimizer, schedule, RNG, counters
        TrainProgress progress = resume.Progress;
        long startStep = resume.StartStep, step = startStep;
        if (IsMainRank) foreach (IMetricSink sink in _sinks) await sink.DiscardFromStepAsync(startStep, cancellationToken);
        LogStart(_logger, startStep, _options.TotalSteps);
        using GracefulStop stop = GracefulStop.Start(_stopOnSignals, cancellationToken, _logger, () => step);

        // The data stream has its own token: a cancelled run still finishes the step it is in, so that the saved data
        // status is the one after the last completed step.
        using var dataStop = new CancellationTokenSource();
        await using IAsyncEnumerator<PackedBatch> batches = _data.Read(resume.DataStatus, dataStop.Token).GetAsyncEnumerator(dataStop.Token);
        try
        {
            _session.Precision.ComputeModel.Module.train();
            long windowStart = _time.GetTimestamp();
            int windowSteps = 0;
            while (step < _options.TotalSteps && !(_session.Parallel.IsDistributed ? _stopAgreed : stop.Token.IsCancellationRequested))
            {
                TrainingStepReport report = await TrainStepAsync(step, batches, stop.Token);
                progress = progress.AfterStep(report.Tokens, report.Samples);
                step++;
                windowSteps++;

                if (report.Step % _options.LogEvery == 0 || report.Step == startStep)
                {
                    await LogStepAsync(report, _time.GetElapsedTime(windowStart), windowSteps);
                    windowStart = _time.GetTimestamp();
                    windowSteps = 0;
                }
                foreach (Action<TrainingStepReport> callback in _onStep) callback(report);
                if (step % _options.SaveEvery == 0 && step < _options.TotalSteps) await SaveAsync(progress);
                if (_validation?.IsDue(step) == true && step < _options.TotalSteps) await _validation.RunAsync(step);
                if (_validationImages?.IsDue(step) == true && step < _options.TotalSteps) await _validationImages.RunAsync(step);
            }

            bool cancelled = step < _options.TotalSteps;
            if (cancelled) LogCancelled(_logger, step);
            CheckpointInfo last = await SaveAsync(progress); // while the stream is open: its status is exact
            if (_validation is not null && !cancelled) await _validation.RunAsync(step); // a stop request skips the final evaluation
            if (_validationImages is not null && !cancelled) await _validationImages.RunAsync(step);
            return new TrainingRunResult(startStep, step, _session.Guard.TotalSkipped, cancelled, last.Folder) { StopSignal = stop.Signal };
        }
        finally
        {
            await dataStop.CancelAsync();
        }
    }

    /// <summary>One optimizer step: <c>gradient_accumulation_steps</c> micro-batches forward and backward, then the update.</summary>
    private async Task<TrainingStepReport> TrainStepAsync(long step, IAsyncEnumerator<PackedBatch> batches, CancellationToken stop)
    {
        DataParallel parallel = _session.Parallel;
        int microBatches = _options.GradientAccumulationSteps;
        double dataWait = 0, forwardBackward = 0;
        long mseTokens = 0, ceTokens = 0, samples = 0, tokens = 0;
        // The step's losses stay on the device ([total, mse, ce], float64) until one read after the last micro-batch:
        // no host synchronisation per micro-batch (docs/precision.md counts them).
        using torch.Tensor sums = torch.zeros(3, torch.ScalarType.Float64, _compute.Device);
        for (int micro = 0; micro < microBatches; micro++)
        {
            long waitStart = _time.GetTimestamp();
            if (!await batches.MoveNextAsync())
                throw new InvalidOperationException($"The data stream ended before step {step}; a training source must stream batches without end.");
            dataWait += _time.GetElapsedTime(waitStart).TotalSeconds;

            long computeStart = _time.GetTimestamp();
            using TorchThreadScope threads = TorchThreadScope.Enter(_cpuThreads); // every step with the run's thread count, on whatever thread resumed
            using PackedBatch batch = OnComputeDevice(batches.Current);
            using var scope = torch.NewDisposeScope();
            _session.Precision.BeforeForward(); // bf16: the working copy takes the master weights after an update
            ModelLossOutputs outputs = _session.Precision.ComputeModel.Forward(batch);
            // CE and MSE are means over the global token counts, all-reduced before backward (the reference's normalisation).
            StepLoss loss = TrainingLoss.Combine(outputs.CePerToken, outputs.CeTokenWeights, outputs.MseSquaredError, _session.LossWeights,
                (c, m, w) => parallel.GlobalNormalizers(c, m, w, _compute.Device));
            loss.Total.backward(); // Combine already divides by gradient_accumulation_steps
            _session.Precision.AfterBackward(); // bf16: gradients into the float32 master gradients

            // As the host sums of float32 values in double did: total += total_i; mse += mse_i / k; ce += ce_i / k.
            torch.Tensor values = torch.stack([loss.Total.detach(), loss.Mse, loss.Ce]).to(torch.ScalarType.Float64);
            values.narrow(0, 1, 2).div_(microBatches);
            sums.add_(values);
            mseTokens += loss.MseTokens;
            ceTokens += loss.CeTokens;
            samples += batch.Samples.Count;
            tokens += batch.SequenceLength;
            _throughput.Add(batch.SequenceLength, batch.SampleLens);
            forwardBackward += _time.GetElapsedTime(computeStart).TotalSeconds;
        }
        using TorchThreadScope stepThreads = TorchThreadScope.Enter(_cpuThreads);
        double[] host = HostSync.Read(sums); // the NaN guard needs the loss before it lets AdamW step
        double total = host[0], mse = host[1], ce = host[2];

        OptimizerStepResult result;
        long stepStart = _time.GetTimestamp();
        using (torch.NewDisposeScope()) _session.Gradients.SynchronizeGradients(); // averaged (data parallel) or reduce-scattered (sharded)
        if (parallel.IsDistributed)
        {
            // One small all-reduce: the losses as the ranks' mean, the counts summed, and whether any rank asks to stop.
            StepFigureSums agreed = parallel.ReduceStepFigures(new StepFigureSums(mse, ce, total, ceTokens, mseTokens, samples, tokens, stop.IsCancellationRequested), _compute.Device);
            (mse, ce, total, ceTokens, mseTokens, samples, tokens, _stopAgreed) = (agreed.Mse, agreed.Ce, agreed.Total, agreed.CeTokens, agreed.MseTokens, agreed.Samples, agreed.Tokens, agreed.Stop);
        }
        using (torch.NewDisposeScope()) result = _session.Stepper.Step(step, total);
        double optimizerStep = _time.GetElapsedTime(stepStart).TotalSeconds;
        var report = new TrainingStepReport(step, mse, ce, total, result.LearningRate, result.GradNorm, result.Skipped, ceTokens, mseTokens, samples, tokens)
        {
            DataWaitSeconds = dataWait, ForwardBackwardSeconds = forwardBackward, OptimizerStepSeconds = optimizerStep, OptimizerStep = result,
        };
        return report;
    }

    /// <summary>The batch on the compute device: itself on the CPU, else a copy through pinned memory with one
    /// non-blocking transfer (the CPU original is disposed).</summary>
    private PackedBatch OnComputeDevice(PackedBatch batch)
    {
        if (_compute.Device.type == DeviceType.CPU) return batch;
        using (batch) return batch.ToDeviceForTraining(_compute.Device);
    }

    /// <summary>Logs <paramref name="report"/>; the speed figures cover the <paramref name="windowSteps"/> steps since the last line.</summary>
    private async Task LogStepAsync(TrainingStepReport report, TimeSpan elapsed, int windowSteps)
    {
        ThroughputReport speed = _throughput.Report(elapsed, windowSteps);
        _throughput.Reset();
        long skippedSamples = _data.SkippedSamples?.Invoke() ?? 0;
        DeviceMemoryReading? memory = _memory?.Sample();
        string line = TrainLogLine.Format(report.Step, report.Mse, report.Ce, speed, report.LearningRate, report.GradNorm, skippedSamples);
        TrainingLog.Step(_logger, memory is null ? line : line + DeviceMemoryMonitor.FormatForLogLine(memory));
        if (_sinks.Count == 0 || !IsMainRank) return;
        var figures = new StepFigures(report.Mse, report.Ce, report.LearningRate, report.MseTokens, report.CeTokens, report.GradNorm,
            report.Samples, speed, MemCacheMiB: memory?.PeakReservedMiB ?? 0, SkippedSamples: skippedSamples, SkippedNonFiniteSteps: _session.Guard.TotalSkipped,
            TotalLoss: report.TotalLoss, DataWaitSec: report.DataWaitSeconds);
        StepMetrics metrics = StepMetricsFactory.Create(report.Step, _time.GetUtcNow(), figures);
        if (memory is not null)
        {
            metrics = metrics with
            {
                Values = new Dictionary<string, double>(metrics.Values, StringComparer.Ordinal)
                {
                    [BagelMetricNames.GpuMemUsedMb] = memory.UsedMiB, [BagelMetricNames.GpuMemPeakMb] = memory.PeakUsedMiB, [BagelMetricNames.GpuMemTotalMb] = memory.TotalMiB,
                },
            };
        }
        // Metric sinks are written even after cancellation was requested: the step they describe did complete.
        foreach (IMetricSink sink in _sinks) await sink.WriteAsync(metrics, CancellationToken.None);
    }

    private async Task<CheckpointInfo> SaveAsync(TrainProgress progress)
    {
        // Never cancelled: a half-written checkpoint is worse than a late stop (the writer is atomic either way).
        CheckpointInfo info = _session.Save(progress, _data.CaptureStatus?.Invoke(), CancellationToken.None);
        if (IsMainRank) foreach (IMetricSink sink in _sinks) await sink.FlushAsync(CancellationToken.None);
        foreach (Action<CheckpointInfo> callback in _onSave) callback(info);
        return info;
    }

    /// <summary>
    /// Disposes the session (EMA copy, optimizer, RNG streams) and what the builder made for the trainer (default metric sinks and
    /// logger); the model, added sinks and a logger given with <c>UseLogger</c> belong to the caller.
    /// </summary>
    public void Dispose()
    {
        _session.Dispose();
        foreach (object owned in _owned)
        {
            if (owned is IAsyncDisposable asyncDisposable) asyncDisposable.DisposeAsync().AsTask().GetAwaiter().GetResult();
            else if (owned is IDisposable disposable) disposable.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Training from step {StartStep} to total_steps {TotalSteps}.")]
    private static partial void LogStart(ILogger logger, long startStep, long totalSteps);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Validation images render the trained weights, not the EMA: this sharding mode keeps the weights whole and the EMA in shards over the ranks (parameter sharding, FULL_SHARD or HYBRID_SHARD, renders the EMA).")]
    private static partial void LogShardedEmaRender(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cancellation requested: stopped after {CompletedSteps} completed steps; writing a final checkpoint.")]
    private static partial void LogCancelled(ILogger logger, long completedSteps);
}
