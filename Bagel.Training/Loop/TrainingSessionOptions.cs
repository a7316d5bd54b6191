using Bagel.Training.Precision;
using Bagel.Training.Optimization;
using Bagel.Training.Schedules;
using TorchSharp;

namespace Bagel.Training.Loop;

/// <summary>
/// The choices of a <see cref="TrainingSession"/> that are not among the reference's flags. Every default is the
/// reference's behaviour; <see cref="TrainerBuilder"/> fills these from its <c>Use*</c> calls.
/// </summary>
public sealed class TrainingSessionOptions
{
    /// <summary>NaN or infinite steps in a row that stop the run. Default <see cref="NonFiniteStepGuard.DefaultMaxConsecutive"/> (10).</summary>
    public int MaxConsecutiveNonFiniteSteps { get; set; } = NonFiniteStepGuard.DefaultMaxConsecutive;

    /// <summary>Keep only this many checkpoints, deleting the oldest. Default null: keep all, as the reference.</summary>
    public int? KeepLastCheckpoints { get; set; }

    /// <summary>Replaces the schedule chosen by <c>lr_scheduler</c>. Default null: constant or cosine with warm-up from the flags.</summary>
    public ILearningRateSchedule? Schedule { get; set; }

    /// <summary>Splits the parameters into AdamW groups. Default null: one group with every trainable parameter, as the reference.</summary>
    public Func<torch.nn.Module, IEnumerable<ParameterGroup>>? ParameterGroups { get; set; }

    /// <summary>
    /// Steps AdamW on flat buffers (<see cref="FlatBufferAdamW"/>, bit-identical, faster; the EMA update is then fused
    /// too). Default true; false: TorchSharp's per-tensor AdamW and a per-tensor EMA update.
    /// </summary>
    public bool FlatBufferOptimizer { get; set; } = true;

    /// <summary>How the forward and backward passes compute (<see cref="TrainingPrecision"/>): fp32, or bf16 mixed over
    /// float32 master weights (docs/precision.md). Default <see cref="TrainingPrecision.Fp32"/>.</summary>
    public TrainingPrecision Precision { get; set; } = TrainingPrecision.Fp32;

    /// <summary>The clock that stamps each checkpoint's <c>saved_at</c>. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>
    /// What the model is (sizes, vocabulary, tokenizer), recorded in each checkpoint's <c>run_info.json</c> beside the flags.
    /// Default null: the flags alone.
    /// </summary>
    public IReadOnlyDictionary<string, string>? ModelDescription { get; set; }

    /// <summary>
    /// The ranks to train with, data-parallel (see <see cref="Distributed.DataParallel"/> and docs/distributed.md).
    /// Default null: <see cref="Distributed.DistributedRun.Current"/>, a single process unless the entry point set one.
    /// </summary>
    public Bagel.Core.Distributed.IProcessGroup? ProcessGroup { get; set; }

    /// <summary>
    /// What is sharded over the ranks (docs/sharding.md). Default null: chosen by <c>sharding_strategy</c>
    /// (<see cref="Sharding.ShardingModes.FromFlags"/>).
    /// </summary>
    public Sharding.ShardingMode? Sharding { get; set; }

    /// <summary>
    /// With <see cref="Sharding"/> set: ranks per shard group (hybrid sharding: the state is sharded within groups of
    /// this many consecutive ranks and replicated across them; it must divide the world size). Default null: the whole world.
    /// </summary>
    public int? ShardRanks { get; set; }
}
