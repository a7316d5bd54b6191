using Bagel.Core.Randomness;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using Bagel.Training.Schedules;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Training.Checkpoints;

/// <summary>The stateful pieces of a run that a checkpoint saves and a resume restores.</summary>
/// <param name="Model">The live model (saved as <c>model.safetensors</c>).</param>
/// <param name="Optimizer">The AdamW optimizer.</param>
/// <param name="Scheduler">The learning-rate scheduler.</param>
/// <param name="Ema">The EMA weights, if the run keeps them.</param>
/// <param name="Streams">The loop's named RNG streams (the global torch generator is always saved).</param>
/// <param name="Guard">The non-finite step guard, whose counters go into the train state.</param>
/// <param name="RunInfo">The resolved configuration and versions to store with every checkpoint.</param>
/// <param name="Sharded">A sharded run's model, EMA and optimizer files (replacing the whole-model ones), or null.</param>
public sealed record TrainingComponents(torch.nn.Module Model, AdamW Optimizer, LearningRateScheduler Scheduler,
    IExponentialMovingAverage? Ema = null, RandomStreams? Streams = null, NonFiniteStepGuard? Guard = null, RunInfo? RunInfo = null,
    IShardedCheckpointState? Sharded = null);

/// <summary>Counters of the run at save time.</summary>
/// <param name="CompletedSteps">Optimizer steps completed (the folder's number).</param>
/// <param name="TokensSeen">Real tokens trained on so far.</param>
/// <param name="SamplesSeen">Samples trained on so far.</param>
public sealed record TrainProgress(long CompletedSteps, long TokensSeen = 0, long SamplesSeen = 0)
{
    /// <summary>The counters after one more optimizer step that trained on <paramref name="tokens"/> and <paramref name="samples"/>.</summary>
    public TrainProgress AfterStep(long tokens, long samples) => new(CompletedSteps + 1, TokensSeen + tokens, SamplesSeen + samples);
}

/// <summary>What a restore loaded.</summary>
/// <param name="StartStep">0-based index of the first step to train.</param>
/// <param name="State">The train state (full resume only).</param>
/// <param name="DataStatus">The data status to resume the data pipeline from (full resume only, when saved).</param>
/// <param name="ModelReport">How the model weights matched (null from scratch).</param>
public sealed record RestoreResult(long StartStep, TrainState? State, Bagel.Core.DataStatus.DataStatusDocument? DataStatus,
    Bagel.Core.StateDicts.StateDictLoadReport? ModelReport);
