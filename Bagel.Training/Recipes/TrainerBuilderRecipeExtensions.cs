using Bagel.Training.Options;
using Bagel.Training.ValidationImages;
using Bagel.Training.Loop;

namespace Bagel.Training.Recipes;

/// <summary>Hands a <see cref="BagelRun"/> to a <see cref="TrainerBuilder"/>.</summary>
public static class TrainerBuilderRecipeExtensions
{
    /// <summary>
    /// Sets the model, the data pipeline, the flags and the FLOP sizes from <paramref name="run"/>, the held-out
    /// validation set when <c>validation_config_file</c> is set and the validation images when <c>validation_prompts</c>
    /// is (every <c>validation_images_every</c> steps); sinks, logger and callbacks are still the caller's to add.
    /// </summary>
    public static TrainerBuilder UseRecipe(this TrainerBuilder builder, BagelRun run)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(run);
        builder.UseModel(run.TrainingModel).UseData(run.Pipeline).UseOptions(run.Configuration).UseFlopConfig(run.FlopConfig);
        if (run.Validation is { } validation) builder.UseValidation(validation);
        TrainingOptions training = run.Configuration.Training;
        if (!string.IsNullOrWhiteSpace(training.ValidationPrompts))
        {
            builder.UseValidationImages(new ValidationImageOptions
            {
                Prompts = ValidationPromptFile.Load(training.ValidationPrompts), // checked by BagelRecipe.Validate
                Tokenizer = run.Tokenizer,
                EverySteps = training.ValidationImagesEvery,
            });
        }
        return builder;
    }
}
