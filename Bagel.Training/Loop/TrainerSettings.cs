using Bagel.Core.Devices;
using Bagel.Core.Metrics;
using Bagel.Training.Checkpoints;
using Bagel.Training.Metrics;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using Bagel.Training.Schedules;
using Bagel.Training.Validation;
using Bagel.Training.ValidationImages;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Training.Loop;

/// <summary>Everything <see cref="TrainerBuilder.Build"/> validated, handed to the <see cref="Trainer"/>; <c>Owned</c> lists what the
/// trainer disposes (default sinks and logger).</summary>
internal sealed record TrainerSettings(
    ITrainableModel Model,
    TrainingDataSource Data,
    TrainingConfiguration Configuration,
    IReadOnlyList<IMetricSink> Sinks,
    IReadOnlyList<Action<TrainingStepReport>> OnStep,
    IReadOnlyList<Action<CheckpointInfo>> OnSave,
    ILogger Logger,
    TimeProvider Time,
    Qwen2FlopConfig FlopConfig,
    int MaxConsecutiveNonFiniteSteps,
    int? KeepLastCheckpoints,
    ComputeSelection Compute,
    ILearningRateSchedule? Schedule = null,
    Func<torch.nn.Module, IEnumerable<ParameterGroup>>? ParameterGroups = null,
    ValidationPlan? Validation = null,
    bool FlatBufferOptimizer = true,
    IReadOnlyDictionary<string, string>? ModelDescription = null,
    Precision.TrainingPrecision Precision = Precision.TrainingPrecision.Fp32,
    bool StopOnSignals = false,
    IReadOnlyList<object>? Owned = null,
    Bagel.Core.Distributed.IProcessGroup? ProcessGroup = null,

    ValidationImageOptions? ValidationImages = null)
{
    /// <summary>
    /// torch's intra-op thread count the run holds on every step (<see cref="TrainerBuilder.UseCpuThreads"/> or
    /// <c>ComputeOptions.CpuThreads</c>); null: the count in effect on the thread that builds the trainer, held from then on.
    /// </summary>
    public int? CpuThreads { get; init; }

    /// <summary>What is sharded over the ranks; null: from <c>sharding_strategy</c>.</summary>
    public Sharding.ShardingMode? Sharding { get; init; }

    /// <summary>Ranks per shard group (hybrid sharding); null: the whole world.</summary>
    public int? ShardRanks { get; init; }
}
