using Microsoft.Extensions.Options;

namespace Bagel.Training.Options;

/// <summary>
/// Validates <see cref="TrainingOptions"/>, reporting every bad value at once. Flags that only mean something with
/// sharding accept the strategies Bagel.NET runs (docs/sharding.md); the rest (an explicit hybrid replica count, CPU
/// offload without sharding) fail with <see cref="NeedsDistributed"/>.
/// </summary>
public sealed class TrainingOptionsValidator : IValidateOptions<TrainingOptions>
{
    /// <summary>Learning-rate schedules (<c>lr_scheduler</c>).</summary>
    public static readonly IReadOnlyList<string> LrSchedulers = ["constant", "cosine"];

    /// <summary>FSDP <c>ShardingStrategy</c> enum names the reference accepts.</summary>
    public static readonly IReadOnlyList<string> ShardingStrategies =
        ["FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD", "_HYBRID_SHARD_ZERO2", Sharding.ShardingModes.OptimizerShard];

    /// <summary>Sharding strategies that run as plain data parallelism in one process: the reference's default and NO_SHARD.</summary>
    public static readonly IReadOnlyList<string> SingleProcessShardingStrategies = ["HYBRID_SHARD", "NO_SHARD"];

    /// <summary>Sharding strategies that shard the optimizer state (and so accept <c>cpu_offload</c>).</summary>
    public static readonly IReadOnlyList<string> OptimizerShardingStrategies = [Sharding.ShardingModes.OptimizerShard, "SHARD_GRAD_OP", "_HYBRID_SHARD_ZERO2", "FULL_SHARD"];

    /// <summary>FSDP <c>BackwardPrefetch</c> enum names (the reference's help also names NO_PREFETCH, which is not one).</summary>
    public static readonly IReadOnlyList<string> BackwardPrefetches = ["BACKWARD_PRE", "BACKWARD_POST"];

    /// <summary>The ending of the message for a sharding setting Bagel.NET does not run yet.</summary>
    public const string NeedsDistributed = "is not built yet in Bagel.NET's distributed training (docs/sharding.md lists what runs)";

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var f = new OptionFailures();
        if (!options.VisualGen && !options.VisualUnd)
            f.Add("'visual_gen' and 'visual_und' are both false; nothing would be trained. Turn on at least one.");
        f.NotEmpty("results_dir", options.ResultsDir);
        f.NotEmpty("checkpoint_dir", options.CheckpointDir);
        f.Positive("log_every", options.LogEvery);
        f.Positive("save_every", options.SaveEvery);
        f.Positive("total_steps", options.TotalSteps);
        f.NonNegative("warmup_steps", options.WarmupSteps);
        f.OneOf("lr_scheduler", options.LrScheduler, [.. LrSchedulers]);
        f.Positive("lr", options.Lr);
        f.NonNegative("min_lr", options.MinLr);
        if (options.LrScheduler == "cosine" && options.MinLr > options.Lr)
            f.Add($"'min_lr' ({options.MinLr}) is larger than 'lr' ({options.Lr}); the cosine schedule would rise. Lower 'min_lr'.");
        f.OpenUnit("beta1", options.Beta1);
        f.OpenUnit("beta2", options.Beta2);
        f.NonNegative("eps", options.Eps);
        f.Probability("ema", options.Ema);
        f.Positive("max_grad_norm", options.MaxGradNorm);
        f.Positive("timestep_shift", options.TimestepShift);
        f.NonNegative("mse_weight", options.MseWeight);
        f.NonNegative("ce_weight", options.CeWeight);
        f.Positive("expected_num_tokens", options.ExpectedNumTokens);
        f.Positive("gradient_accumulation_steps", options.GradientAccumulationSteps);
        f.NonNegative("peak_device_tflops", options.PeakDeviceTflops);
        if (options.ResumeModelOnly && options.ResumeFrom is null && !options.AutoResume)
            f.Add("'resume_model_only' is set but 'resume_from' is not; there is nothing to load. Give 'resume_from'.");
        f.NonNegative("validate_every", options.ValidateEvery);
        f.NonNegative("lora_rank", options.LoraRank);
        if (options.LoraRank > 0)
            foreach (string failure in Lora.LoraFlags.ToOptions(options).Validate()) f.Add(failure);
        f.Positive("validation_batches", options.ValidationBatches);
        if (!Precision.TrainingPrecisionNames.IsValid(options.Precision))
            f.Add($"'precision' '{options.Precision}' is not one of {Precision.TrainingPrecisionNames.AcceptedNames}.");
        f.NonNegative("validation_images_every", options.ValidationImagesEvery);
        ValidateDistributed(options, f);
        return f.ToResult();
    }

    private static void ValidateDistributed(TrainingOptions options, OptionFailures f)
    {
        if (!ShardingStrategies.Contains(options.ShardingStrategy, StringComparer.Ordinal))
            f.OneOf("sharding_strategy", options.ShardingStrategy, [.. ShardingStrategies]);
        f.Positive("num_shard", options.NumShard);
        if (options.NumReplicate != 1)
            f.Add($"'num_replicate' {options.NumReplicate} (hybrid replica groups) {NeedsDistributed}. Leave it at 1.");
        if (options.CpuOffload && !OptimizerShardingStrategies.Contains(options.ShardingStrategy, StringComparer.Ordinal))
            f.Add($"'cpu_offload' with sharding_strategy {options.ShardingStrategy} {NeedsDistributed}. It applies to {string.Join(", ", OptimizerShardingStrategies)}.");
        f.OneOf("backward_prefetch", options.BackwardPrefetch, [.. BackwardPrefetches]);
    }
}
