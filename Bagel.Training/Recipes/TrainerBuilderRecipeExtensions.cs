using Bagel.Training.Loop;

namespace Bagel.Training.Recipes;

/// <summary>Hands a <see cref="BagelRun"/> to a <see cref="TrainerBuilder"/>.</summary>
public static class TrainerBuilderRecipeExtensions
{
    /// <summary>
    /// Sets the model, the data pipeline, the flags and the FLOP sizes from <paramref name="run"/>; sinks, logger and
    /// callbacks are still the caller's to add.
    /// </summary>
    public static TrainerBuilder UseRecipe(this TrainerBuilder builder, BagelRun run)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(run);
        builder.UseModel(run.TrainingModel).UseData(run.Pipeline).UseOptions(run.Configuration).UseFlopConfig(run.FlopConfig);
        return run.Validation is { } validation ? builder.UseValidation(validation) : builder;
    }
}
