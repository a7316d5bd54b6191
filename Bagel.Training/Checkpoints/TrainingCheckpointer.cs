using Bagel.Core.DataStatus;
using Bagel.Core.StateDicts;
using Bagel.Training.Optimization;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.Checkpoints;

/// <summary>
/// Saves every stateful piece of a run as one checkpoint folder and restores them from a <see cref="ResumePlan"/>:
/// the glue between the loop and <see cref="CheckpointWriter"/>, independent of the model's architecture.
/// </summary>
public sealed class TrainingCheckpointer
{
    private readonly CheckpointWriter _writer;
    private readonly TrainingComponents _components;
    private readonly ILogger? _logger;
    private readonly TimeProvider _time;

    /// <summary>Creates the checkpointer; <paramref name="timeProvider"/> stamps <see cref="TrainState.SavedAt"/> (default the system clock).</summary>
    public TrainingCheckpointer(CheckpointWriter writer, TrainingComponents components, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        _writer = writer ?? throw new ArgumentNullException(nameof(writer));
        _components = components ?? throw new ArgumentNullException(nameof(components));
        _logger = logger;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Writes the checkpoint of <see cref="TrainProgress.CompletedSteps"/> with the data status, if any.</summary>
    public CheckpointInfo Save(TrainProgress progress, DataStatusDocument? dataStatus = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(progress);
        var parts = new List<CheckpointPart>
        {
            CheckpointPart.Model(_components.Model),
            CheckpointPart.Optimizer(_components.Optimizer),
            CheckpointPart.Scheduler(_components.Scheduler),
            CheckpointPart.Rng(_components.Streams),
        };
        if (_components.Ema is { } ema) parts.Add(CheckpointPart.Ema(ema));
        if (dataStatus is not null) parts.Add(CheckpointPart.DataStatus(dataStatus with { Step = progress.CompletedSteps }));
        if (_components.RunInfo is { } info) parts.Add(CheckpointPart.RunInfo(info));
        var state = new TrainState(TrainState.CurrentFormatVersion, progress.CompletedSteps, _components.Guard?.TotalSkipped ?? 0,
            _components.Guard?.ConsecutiveSkipped ?? 0, progress.TokensSeen, progress.SamplesSeen, _time.GetUtcNow());
        return _writer.Save(state, parts, cancellationToken);
    }

    /// <summary>Loads what <paramref name="plan"/> says into the components.</summary>
    /// <exception cref="CheckpointException">A file the plan needs is missing or does not fit.</exception>
    public RestoreResult Restore(ResumePlan plan, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.Kind == ResumeKind.Scratch || plan.ModelWeightsFile is null) return new RestoreResult(0, null, null, null);

        var load = new StateDictLoadOptions { Strict = false, KeyMap = DropRebuiltKeys, Logger = _logger };
        StateDictLoadReport report = StateDictLoader.Load(_components.Model, plan.ModelWeightsFile, load, cancellationToken);
        if (_components.Ema is { } ema && plan.EmaWeightsFile is not null) ema.LoadWeights(plan.EmaWeightsFile, DropRebuiltKeys, _logger);
        if (!plan.LoadsTrainState) return new RestoreResult(plan.StartStep, null, null, report);

        TrainState state = TrainState.Read(plan.TrainStateFile(CheckpointLayout.TrainStateFileName));
        AdamWStateFile.Load(_components.Optimizer, plan.TrainStateFile(CheckpointLayout.OptimizerFileName));
        _components.Scheduler.Load(plan.TrainStateFile(CheckpointLayout.SchedulerFileName));
        if (_components.Scheduler.NextStep != state.CompletedSteps)
            throw new CheckpointException($"{plan.Folder}: the scheduler is at step {_components.Scheduler.NextStep} but the train state says {state.CompletedSteps} steps were completed.");
        string rng = plan.TrainStateFile(CheckpointLayout.RngStateFileName);
        if (File.Exists(rng)) RngStateDocument.Read(rng).Restore(_components.Streams);
        _components.Guard?.Restore(state.SkippedNonFiniteSteps, state.ConsecutiveNonFiniteSteps);
        string data = plan.TrainStateFile(CheckpointLayout.DataStatusFileName);
        DataStatusDocument? dataStatus = File.Exists(data) ? DataStatusFile.Read(data, _logger) : null;
        return new RestoreResult(state.NextStepIndex, state, dataStatus, report);
    }

    private static string? DropRebuiltKeys(string key) =>
        ResumePlan.DroppedWeightKeySuffixes.Any(suffix => key.EndsWith(suffix, StringComparison.Ordinal)) ? null : key;
}
