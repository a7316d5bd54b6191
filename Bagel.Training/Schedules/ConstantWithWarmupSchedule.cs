namespace Bagel.Training.Schedules;

/// <summary>
/// The reference's <c>constant</c> schedule: <c>k &lt; W ? k/max(1,W) : 1</c> (training.md 5.3). With a warm-up the
/// first update (k = 0) uses learning rate 0.
/// </summary>
public sealed class ConstantWithWarmupSchedule : ILearningRateSchedule
{
    /// <summary>Creates the schedule with <paramref name="warmupSteps"/> linear warm-up steps (reference default 2000).</summary>
    public ConstantWithWarmupSchedule(long warmupSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        WarmupSteps = warmupSteps;
    }

    /// <summary>Warm-up steps W.</summary>
    public long WarmupSteps { get; }

    /// <inheritdoc />
    public string Name => "constant";

    /// <inheritdoc />
    public double Multiplier(long step) => step < WarmupSteps ? (double)step / Math.Max(1, WarmupSteps) : 1.0;
}
