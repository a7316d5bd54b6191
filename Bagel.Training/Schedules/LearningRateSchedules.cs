using Bagel.Training.Options;

namespace Bagel.Training.Schedules;

/// <summary>Builds the schedule that <c>lr_scheduler</c> names.</summary>
public static class LearningRateSchedules
{
    /// <summary>The <c>constant</c> or <c>cosine</c> schedule for <paramref name="options"/>.</summary>
    /// <exception cref="InvalidTrainingOptionsException">When <c>lr_scheduler</c> is neither.</exception>
    public static ILearningRateSchedule FromOptions(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.LrScheduler switch
        {
            "constant" => new ConstantWithWarmupSchedule(options.WarmupSteps),
            "cosine" => new CosineWithWarmupSchedule(options.WarmupSteps, options.TotalSteps, options.Lr, options.MinLr),
            _ => throw new InvalidTrainingOptionsException(
                [$"'lr_scheduler' is '{options.LrScheduler}'; it must be 'constant' or 'cosine'."]),
        };
    }
}
