using Bagel.Training.Logging;
using Bagel.Training.Recipes;
using Microsoft.Extensions.Logging;

namespace Bagel.Tests.Training.Recipes;

public sealed class BareStepLineLoggerProviderTests
{
    [Fact]
    public void OnlyTheStepLinesAreWrittenAndWithoutThePrefix()
    {
        using var output = new StringWriter { NewLine = "\n" };
        using (var provider = new BareStepLineLoggerProvider(output))
        {
            ILogger logger = provider.CreateLogger("Bagel.Training.Loop.Trainer");
            logger.LogInformation("Training from step 0 to total_steps 2.");
            TrainingLog.Step(logger, "(step=0000000) Train Loss mse: 0.4063, Train Loss ce: 0.5504, ");
            TrainingLog.NonFiniteStep(logger, 1, double.NaN, double.NaN, 1, 1);
        }

        Assert.Equal("(step=0000000) Train Loss mse: 0.4063, Train Loss ce: 0.5504, \n", output.ToString());
    }
}
