using Bagel.Core.DataStatus;
using Bagel.Core.Randomness;
using Bagel.Core.StateDicts;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Bagel.Training.Schedules;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Checkpoints;

/// <summary>One file of a checkpoint: its name in the folder and how to write it there.</summary>
/// <param name="FileName">File name inside the step folder.</param>
/// <param name="Write">Writes the file to the given full path.</param>
public sealed record CheckpointPart(string FileName, Action<string, CancellationToken> Write)
{
    /// <summary><c>model.safetensors</c> from the module's state dict.</summary>
    public static CheckpointPart Model(torch.nn.Module module, StateDictSaveOptions? options = null) =>
        new(CheckpointLayout.ModelFileName, (path, ct) => StateDictSaver.SaveFile(module, path, options, ct));

    /// <summary><c>ema.safetensors</c> from an <see cref="EmaModel"/> or <see cref="EmaTensors"/>.</summary>
    public static CheckpointPart Ema(IExponentialMovingAverage ema) => new(CheckpointLayout.EmaFileName, (path, ct) => ema.Save(path, ct));

    /// <summary>The AdamW state.</summary>
    public static CheckpointPart Optimizer(AdamW optimizer) =>
        new(CheckpointLayout.OptimizerFileName, (path, ct) => AdamWStateFile.Save(optimizer, path, ct));

    /// <summary>The scheduler state.</summary>
    public static CheckpointPart Scheduler(LearningRateScheduler scheduler) =>
        new(CheckpointLayout.SchedulerFileName, (path, _) => scheduler.Save(path));

    /// <summary>The data status.</summary>
    public static CheckpointPart DataStatus(DataStatusDocument document) =>
        new(CheckpointLayout.DataStatusFileName, (path, _) => DataStatusFile.Write(path, document));

    /// <summary>Every RNG state, captured when the part is written.</summary>
    public static CheckpointPart Rng(RandomStreams? streams = null) =>
        new(CheckpointLayout.RngStateFileName, (path, _) => RngStateDocument.Capture(streams).Write(path));

    /// <summary>The resolved configuration and versions.</summary>
    public static CheckpointPart RunInfo(RunInfo info) => new(CheckpointLayout.RunInfoFileName, (path, _) => info.Write(path));
}
