using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Bagel.Training.Options;

/// <summary>Registers the three option sets with Microsoft.Extensions.Options, bound from configuration and validated.</summary>
public static class TrainingOptionsServiceCollectionExtensions
{
    /// <summary>
    /// Binds <see cref="ModelOptions"/>, <see cref="DataOptions"/> and <see cref="TrainingOptions"/> from
    /// <paramref name="configuration"/> (the <c>model</c>, <c>data</c>, <c>training</c> sections, or the root with
    /// <paramref name="flat"/>, default false) and registers their validators; reading <c>IOptions&lt;T&gt;.Value</c>
    /// throws an <see cref="OptionsValidationException"/> listing every bad value of that set, and hosts validate at
    /// start.
    /// </summary>
    public static IServiceCollection AddBagelTrainingOptions(this IServiceCollection services, IConfiguration configuration, bool flat = false)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        Add<ModelOptions, ModelOptionsValidator>(services, flat ? configuration : configuration.GetSection(ModelOptions.SectionName));
        Add<DataOptions, DataOptionsValidator>(services, flat ? configuration : configuration.GetSection(DataOptions.SectionName));
        Add<TrainingOptions, TrainingOptionsValidator>(services, flat ? configuration : configuration.GetSection(TrainingOptions.SectionName));
        return services;
    }

    private static void Add<TOptions, TValidator>(IServiceCollection services, IConfiguration section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddOptions<TOptions>().Configure(options => section.Bind(options)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, TValidator>());
    }
}
