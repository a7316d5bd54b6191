using Bagel.Training.Options;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bagel.Tests.Training.Options;

public sealed class TrainingOptionsServiceCollectionExtensionsTests
{
    private static ServiceProvider Build(params (string Key, string Value)[] pairs)
    {
        IConfiguration configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(pairs.Select(p => new KeyValuePair<string, string?>(p.Key, p.Value))).Build();
        return new ServiceCollection().AddBagelTrainingOptions(configuration).BuildServiceProvider();
    }

    [Fact]
    public void OptionsResolveBoundFromTheirSections()
    {
        using ServiceProvider provider = Build(("training:total_steps", "40"), ("data:num_workers", "2"), ("model:interpolate_pos", "true"));

        Assert.Equal(40, provider.GetRequiredService<IOptions<TrainingOptions>>().Value.TotalSteps);
        Assert.Equal(2, provider.GetRequiredService<IOptions<DataOptions>>().Value.NumWorkers);
        Assert.True(provider.GetRequiredService<IOptions<ModelOptions>>().Value.InterpolatePos);
    }

    [Fact]
    public void ResolvingInvalidOptionsThrowsWithEveryFailure()
    {
        using ServiceProvider provider = Build(("training:log_every", "0"), ("training:cpu_offload", "true"));

        var exception = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<TrainingOptions>>().Value);

        Assert.Equal(2, exception.Failures.Count());
        Assert.Contains(exception.Failures, f => f.Contains("log_every", StringComparison.Ordinal));
        Assert.Contains(exception.Failures, f => f.Contains(TrainingOptionsValidator.NeedsDistributed, StringComparison.Ordinal));
    }
}
