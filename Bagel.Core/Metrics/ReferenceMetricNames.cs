namespace Bagel.Core.Metrics;

/// <summary>
/// The keys the reference logs to W&amp;B at each logged step (training.md §5.6), kept identical so dashboards and
/// comparisons line up. Losses are means over ranks.
/// </summary>
public static class ReferenceMetricNames
{
    /// <summary><c>mse</c>: flow-matching loss, mean over channels then over noisy latent tokens (all ranks). Unit 1.</summary>
    public const string Mse = "mse";

    /// <summary><c>ce</c>: cross-entropy, mean over labelled tokens (all ranks). Unit 1 (nats).</summary>
    public const string Ce = "ce";

    /// <summary><c>lr</c>: the learning rate used by this step's optimizer update. Unit 1.</summary>
    public const string Lr = "lr";

    /// <summary><c>total_mse_tokens</c>: noisy latent tokens carrying the MSE loss in this step, summed over ranks. Unit {token}.</summary>
    public const string TotalMseTokens = "total_mse_tokens";

    /// <summary><c>total_ce_tokens</c>: tokens carrying the CE loss in this step, summed over ranks. Unit {token}.</summary>
    public const string TotalCeTokens = "total_ce_tokens";

    /// <summary><c>total_norm</c>: global L2 norm of the gradients before clipping. Unit 1.</summary>
    public const string TotalNorm = "total_norm";

    /// <summary><c>total_samples</c>: samples packed into this step's batches, summed over ranks. Unit {sample}.</summary>
    public const string TotalSamples = "total_samples";

    /// <summary><c>tokens_per_sec</c>: real tokens processed per second, summed over ranks. Unit {token}/s.</summary>
    public const string TokensPerSec = "tokens_per_sec";

    /// <summary><c>tokens_per_step</c>: real tokens in this step, summed over ranks. Unit {token}.</summary>
    public const string TokensPerStep = "tokens_per_step";

    /// <summary><c>actual_tflops</c>: achieved model TFLOP/s per GPU from the reference's FLOPs estimate. Unit TFLOP/s.</summary>
    public const string ActualTflops = "actual_tflops";

    /// <summary><c>mfu</c>: model FLOPs utilisation, <c>actual_tflops / peak</c> (0 when the GPU's peak is unknown). Unit 1 (fraction).</summary>
    public const string Mfu = "mfu";

    /// <summary><c>mem_allocated</c>: peak allocated accelerator memory, max over ranks. Unit MiB.</summary>
    public const string MemAllocated = "mem_allocated";

    /// <summary><c>mem_cache</c>: peak reserved (cached) accelerator memory, max over ranks. Unit MiB.</summary>
    public const string MemCache = "mem_cache";
}
