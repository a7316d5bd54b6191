namespace Bagel.Core.Metrics;

/// <summary>
/// Metrics Bagel.NET logs in addition to the reference's (<see cref="ReferenceMetricNames"/>). They never reuse a
/// reference key.
/// </summary>
public static class BagelMetricNames
{
    /// <summary>
    /// Prefix of validation metrics: <c>val/{group}/{loss}</c>, the held-out losses of one dataset group (<c>mse</c> and
    /// <c>ce</c>, reduced as the training losses; a loss the group has no tokens for is absent). They arrive in their own
    /// record whose step is the number of completed steps (the step of the checkpoint with the same weights).
    /// </summary>
    public const string ValidationPrefix = "val/";

    /// <summary><c>steps_per_sec</c>: optimizer steps per second since the last log line. Unit 1/s.</summary>
    public const string StepsPerSec = "steps_per_sec";

    /// <summary><c>skipped_samples</c>: samples the packer dropped in this step (too long, or lost on buffer overflow). Unit {sample}.</summary>
    public const string SkippedSamples = "skipped_samples";

    /// <summary><c>skipped_steps_nonfinite</c>: optimizer steps skipped so far because the loss or gradient norm was not finite. Unit {step}.</summary>
    public const string SkippedStepsNonFinite = "skipped_steps_nonfinite";

    /// <summary><c>loss</c>: the total loss the backward pass used, <c>ce·ce_weight + mse·mse_weight</c>. Unit 1.</summary>
    public const string TotalLoss = "loss";

    /// <summary><c>data_wait_sec</c>: seconds the step waited for its packed batch. Unit s.</summary>
    public const string DataWaitSec = "data_wait_sec";

    /// <summary>GPU memory used on the device now, MiB (device-wide, <c>cudaMemGetInfo</c>; CUDA only).</summary>
    public const string GpuMemUsedMb = "gpu_mem_used_mb";

    /// <summary>The peak of <see cref="GpuMemUsedMb"/> over the run's log points, MiB (CUDA only).</summary>
    public const string GpuMemPeakMb = "gpu_mem_peak_mb";

    /// <summary>The device's total memory, MiB (CUDA only).</summary>
    public const string GpuMemTotalMb = "gpu_mem_total_mb";

    /// <summary>The key of a validation loss for one dataset group, e.g. <c>val/t2i_pretrain/mse</c>.</summary>
    /// <param name="group">The dataset group name (no '/').</param>
    /// <param name="loss"><see cref="ReferenceMetricNames.Mse"/> or <see cref="ReferenceMetricNames.Ce"/>.</param>
    /// <returns>The key.</returns>
    /// <exception cref="ArgumentException">The group is empty or contains '/', or the loss is neither mse nor ce.</exception>
    public static string ValidationLoss(string group, string loss)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(group);
        if (group.Contains('/', StringComparison.Ordinal))
            throw new ArgumentException($"Dataset group name '{group}' contains '/', which separates metric key parts.", nameof(group));
        if (loss is not (ReferenceMetricNames.Mse or ReferenceMetricNames.Ce))
            throw new ArgumentException($"Validation loss '{loss}' is not '{ReferenceMetricNames.Mse}' or '{ReferenceMetricNames.Ce}'.", nameof(loss));
        return $"{ValidationPrefix}{group}/{loss}";
    }
}
