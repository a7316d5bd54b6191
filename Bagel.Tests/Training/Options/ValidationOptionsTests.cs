using Bagel.Training.Options;
using Microsoft.Extensions.Configuration;

namespace Bagel.Tests.Training.Options;

/// <summary>The validation options (Bagel.NET extensions): defaults, binding and validation.</summary>
public sealed class ValidationOptionsTests
{
    [Fact]
    public void ValidationIsOffByDefaultAndFollowsTheCheckpointsWhenOn()
    {
        var options = new TrainingOptions();

        Assert.Equal("", options.ValidationConfigFile);
        Assert.Equal(0, options.ValidateEvery);
        Assert.Equal(TrainingOptions.DefaultValidationBatches, options.ValidationBatches);
        Assert.True(new TrainingOptionsValidator().Validate(null, options).Succeeded);
    }

    [Fact]
    public void TheKeysBindFromConfigurationAndTheCommandLine()
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(
            ReferenceCommandLine.Parse(["--validation_config_file", "val.yaml", "--validate_every", "50", "--validation_batches", "2"])!).Build();

        TrainingOptions options = TrainingConfiguration.BindTraining(configuration);

        Assert.Equal("val.yaml", options.ValidationConfigFile);
        Assert.Equal(50, options.ValidateEvery);
        Assert.Equal(2, options.ValidationBatches);
    }

    [Fact]
    public void BadValuesAreReportedTogether()
    {
        var options = new TrainingOptions { ValidateEvery = -1, ValidationBatches = 0 };

        var result = new TrainingOptionsValidator().Validate(null, options);

        Assert.Equal(["'validate_every' is -1; it must be 0 or greater.", "'validation_batches' is 0; it must be greater than 0."], result.Failures);
    }
}
