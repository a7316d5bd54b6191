namespace Bagel.Training.Schedules;

/// <summary>
/// A learning-rate schedule as the reference's <c>LambdaLR</c> lambda: the multiplier of the base learning rate for
/// optimizer step <c>k</c> (0-based; step 0 is the first update). Implement it to plug in a schedule of your own.
/// </summary>
public interface ILearningRateSchedule
{
    /// <summary>Name stored in scheduler state, so a resume with a different schedule is detected.</summary>
    string Name { get; }

    /// <summary>The multiplier of the base learning rate used by the update of step <paramref name="step"/>.</summary>
    double Multiplier(long step);
}
