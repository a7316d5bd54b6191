using System.Text.Json;
using Bagel.Training.Checkpoints;
using TorchSharp;

namespace Bagel.Training.Schedules;

/// <summary>
/// LambdaLR semantics over a TorchSharp optimizer: at construction every group's learning rate becomes
/// <c>base·m(0)</c> (so with a warm-up the first update uses lr 0); each <see cref="Step"/>, called after an optimizer
/// step, moves to the next step's multiplier. Base rates are the groups' learning rates at construction.
/// </summary>
public sealed class LearningRateScheduler
{
    /// <summary>File name in a checkpoint folder.</summary>
    public const string FileName = "scheduler.json";

    private readonly torch.optim.Optimizer _optimizer;
    private readonly double[] _baseRates;

    /// <summary>Attaches <paramref name="schedule"/> to <paramref name="optimizer"/> and applies step 0's multiplier.</summary>
    public LearningRateScheduler(torch.optim.Optimizer optimizer, ILearningRateSchedule schedule)
    {
        _optimizer = optimizer ?? throw new ArgumentNullException(nameof(optimizer));
        Schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));
        _baseRates = [.. optimizer.ParamGroups.Select(g => g.LearningRate)];
        Apply();
    }

    /// <summary>The schedule.</summary>
    public ILearningRateSchedule Schedule { get; }

    /// <summary>The step whose multiplier is in effect (0 before the first <see cref="Step"/>).</summary>
    public long NextStep { get; private set; }

    /// <summary>Base learning rate of each parameter group.</summary>
    public IReadOnlyList<double> BaseLearningRates => _baseRates;

    /// <summary>Learning rate of the first group now (the value the reference logs as <c>lr</c>).</summary>
    public double CurrentLearningRate => _optimizer.ParamGroups.First().LearningRate;

    /// <summary>Advances to the next step's learning rate; call after each optimizer step.</summary>
    public void Step()
    {
        NextStep++;
        Apply();
    }

    /// <summary>The state to save.</summary>
    public SchedulerState GetState() => new(SchedulerState.CurrentFormatVersion, Schedule.Name, NextStep, [.. _baseRates]);

    /// <summary>Restores <paramref name="state"/> and applies its learning rate.</summary>
    /// <exception cref="SchedulerStateException">When the schedule name or group count differs.</exception>
    public void LoadState(SchedulerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.FormatVersion != SchedulerState.CurrentFormatVersion)
            throw new SchedulerStateException($"Scheduler state has format version {state.FormatVersion}; this build reads {SchedulerState.CurrentFormatVersion}.");
        if (state.Schedule != Schedule.Name)
            throw new SchedulerStateException($"Scheduler state is for schedule '{state.Schedule}' but this run uses '{Schedule.Name}'. Use the same lr_scheduler, or resume with resume_model_only.");
        if (state.BaseLearningRates.Count != _baseRates.Length)
            throw new SchedulerStateException($"Scheduler state has {state.BaseLearningRates.Count} parameter groups but the optimizer has {_baseRates.Length}.");
        state.BaseLearningRates.ToArray().CopyTo(_baseRates, 0);
        NextStep = state.NextStep;
        Apply();
    }

    /// <summary>Writes the state to <paramref name="path"/> atomically.</summary>
    public void Save(string path) => CheckpointFiles.WriteJsonAtomic(path, GetState(), TrainingJsonContext.Default.SchedulerState);

    /// <summary>Reads and restores the state saved at <paramref name="path"/>.</summary>
    public void Load(string path)
    {
        SchedulerState state = CheckpointFiles.ReadJson(path, TrainingJsonContext.Default.SchedulerState);
        try
        {
            LoadState(state);
        }
        catch (SchedulerStateException e)
        {
            throw new SchedulerStateException($"{path}: {e.Message}");
        }
    }

    private void Apply()
    {
        double multiplier = Schedule.Multiplier(NextStep);
        int i = 0;
        foreach (torch.optim.ILearningRateController group in _optimizer.ParamGroups)
            group.LearningRate = _baseRates[i++] * multiplier;
    }
}
