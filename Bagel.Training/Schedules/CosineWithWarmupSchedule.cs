namespace Bagel.Training.Schedules;

/// <summary>
/// The reference's <c>cosine</c> schedule (training.md 5.3): <c>k &lt; W ? k/max(1,W) : max(0, c·(1−ρ)+ρ)</c> with
/// <c>c = 0.5·(1+cos(π·p))</c>, <c>p = (k−W)/max(1, total_steps−W)</c> and <c>ρ = min_lr/lr</c>.
/// </summary>
public sealed class CosineWithWarmupSchedule : ILearningRateSchedule
{
    /// <summary>Creates the schedule. <paramref name="minLr"/> / <paramref name="lr"/> is the final multiplier ρ.</summary>
    public CosineWithWarmupSchedule(long warmupSteps, long totalSteps, double lr, double minLr)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(totalSteps);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(lr);
        ArgumentOutOfRangeException.ThrowIfNegative(minLr);
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        MinLrRatio = minLr / lr;
    }

    /// <summary>Warm-up steps W.</summary>
    public long WarmupSteps { get; }

    /// <summary>Total steps; the cosine reaches ρ at this step.</summary>
    public long TotalSteps { get; }

    /// <summary>ρ = min_lr / lr.</summary>
    public double MinLrRatio { get; }

    /// <inheritdoc />
    public string Name => "cosine";

    /// <inheritdoc />
    public double Multiplier(long step)
    {
        if (step < WarmupSteps) return (double)step / Math.Max(1, WarmupSteps);
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        double cosine = 0.5 * (1.0 + Math.Cos(Math.PI * progress));
        return Math.Max(0.0, cosine * (1.0 - MinLrRatio) + MinLrRatio);
    }
}
