namespace Bagel.Training.Schedules;

/// <summary>
/// Saved state of a <see cref="LearningRateScheduler"/> (our <c>scheduler.json</c>; the reference pickles
/// <c>scheduler.pt</c>).
/// </summary>
/// <param name="FormatVersion">Format version, <see cref="CurrentFormatVersion"/> when written.</param>
/// <param name="Schedule">The schedule's <see cref="ILearningRateSchedule.Name"/>.</param>
/// <param name="NextStep">The step whose multiplier is in effect now (LambdaLR's <c>last_epoch</c>).</param>
/// <param name="BaseLearningRates">Base learning rate of each parameter group.</param>
public sealed record SchedulerState(int FormatVersion, string Schedule, long NextStep, IReadOnlyList<double> BaseLearningRates)
{
    /// <summary>Format version this build writes.</summary>
    public const int CurrentFormatVersion = 1;
}
