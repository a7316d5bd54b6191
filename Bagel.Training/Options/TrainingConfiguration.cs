using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Bagel.Training.Options;

/// <summary>
/// The three reference argument sets, bound from <see cref="IConfiguration"/> and validated together.
/// </summary>
/// <param name="Model">Model flags (<c>ModelArguments</c>).</param>
/// <param name="Data">Data flags (<c>DataArguments</c>).</param>
/// <param name="Training">Training flags (<c>TrainingArguments</c>).</param>
public sealed record TrainingConfiguration(ModelOptions Model, DataOptions Data, TrainingOptions Training)
{
    /// <summary>Every option at its reference default.</summary>
    public static TrainingConfiguration Defaults() => new(new ModelOptions(), new DataOptions(), new TrainingOptions());

    /// <summary>Binds <see cref="ModelOptions"/> from <paramref name="section"/> (snake_case keys); unset keys keep their defaults.</summary>
    public static ModelOptions BindModel(IConfiguration section) => Bind<ModelOptions>(section);

    /// <summary>Binds <see cref="DataOptions"/> from <paramref name="section"/>.</summary>
    public static DataOptions BindData(IConfiguration section) => Bind<DataOptions>(section);

    /// <summary>Binds <see cref="TrainingOptions"/> from <paramref name="section"/>.</summary>
    public static TrainingOptions BindTraining(IConfiguration section) => Bind<TrainingOptions>(section);

    /// <summary>
    /// Binds all three sets. With <paramref name="flat"/> (default <c>false</c>) every key is read from the root, as the
    /// reference's single flag namespace; otherwise from the <c>model</c>, <c>data</c> and <c>training</c> sections.
    /// </summary>
    public static TrainingConfiguration Bind(IConfiguration configuration, bool flat = false)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return flat
            ? new(BindModel(configuration), BindData(configuration), BindTraining(configuration))
            : new(BindModel(configuration.GetSection(ModelOptions.SectionName)),
                BindData(configuration.GetSection(DataOptions.SectionName)),
                BindTraining(configuration.GetSection(TrainingOptions.SectionName)));
    }

    /// <summary>Every failure of all three sets, each naming its key; empty when all are valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var failures = new List<string>();
        Collect(new ModelOptionsValidator().Validate(null, Model), failures);
        Collect(new DataOptionsValidator().Validate(null, Data), failures);
        Collect(new TrainingOptionsValidator().Validate(null, Training), failures);
        return failures;
    }

    /// <summary>Throws <see cref="InvalidTrainingOptionsException"/> listing every bad value, or returns this.</summary>
    public TrainingConfiguration ValidateOrThrow()
    {
        IReadOnlyList<string> failures = Validate();
        return failures.Count == 0 ? this : throw new InvalidTrainingOptionsException(failures);
    }

    private static T Bind<T>(IConfiguration section) where T : new()
    {
        ArgumentNullException.ThrowIfNull(section);
        var options = new T();
        try
        {
            section.Bind(options, binder => binder.ErrorOnUnknownConfiguration = false);
        }
        catch (InvalidOperationException e)
        {
            // The binder throws for values it cannot convert (e.g. lr=abc); name it as an option failure.
            throw new InvalidTrainingOptionsException([$"A {typeof(T).Name} value cannot be converted: {e.Message}"]);
        }
        return options;
    }

    private static void Collect(ValidateOptionsResult result, List<string> failures)
    {
        if (result.Failed && result.Failures is not null) failures.AddRange(result.Failures);
    }
}
