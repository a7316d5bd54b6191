using Bagel.Training.Options;
using TorchSharp;

namespace Bagel.Training.Loop;

/// <summary>
/// Settings that are valid one by one but make little sense together for the run being built (the reference's
/// defaults in a short trial run, for instance): <see cref="TrainerBuilder.Build"/> logs each as a warning.
/// </summary>
internal static class TrainingPlanWarnings
{
    /// <summary>Tokens per batch above which a CPU step is expected to take minutes.</summary>
    public const int CpuTokenWarningThreshold = 8192;

    /// <summary>The warnings for <paramref name="configuration"/> on <paramref name="device"/>.</summary>
    /// <param name="configuration">The run's flags.</param>
    /// <param name="device">The compute device.</param>
    /// <param name="customSchedule">Whether a schedule replaces <c>lr_scheduler</c> (then <c>warmup_steps</c> is not used).</param>
    public static IReadOnlyList<string> For(TrainingConfiguration configuration, torch.Device device, bool customSchedule)
    {
        TrainingOptions t = configuration.Training;
        var warnings = new List<string>();
        if (!customSchedule && t.WarmupSteps > 0 && t.WarmupSteps >= t.TotalSteps)
            warnings.Add($"warmup_steps {t.WarmupSteps} is not below total_steps {t.TotalSteps}: the learning rate never finishes its warm-up " +
                         $"(the last step uses {Math.Min(1.0, (double)t.TotalSteps / t.WarmupSteps):P1} of lr {t.Lr}). Lower warmup_steps.");
        if (t.SaveEvery > t.TotalSteps)
            warnings.Add($"save_every {t.SaveEvery} is above total_steps {t.TotalSteps}: no checkpoint is written before the final one, so a crash loses the whole run.");
        if (t.LogEvery > t.TotalSteps)
            warnings.Add($"log_every {t.LogEvery} is above total_steps {t.TotalSteps}: only the first step is logged.");
        if (device.type == DeviceType.CPU && t.ExpectedNumTokens >= CpuTokenWarningThreshold)
            warnings.Add($"expected_num_tokens {t.ExpectedNumTokens} (max_num_tokens {configuration.Data.MaxNumTokens}) on the CPU: a step packs that many tokens " +
                         "and may take minutes. For a trial run lower expected_num_tokens, max_num_tokens and max_num_tokens_per_sample.");
        return warnings;
    }
}
