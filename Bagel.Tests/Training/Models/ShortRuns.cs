using Bagel.Training.Options;

namespace Bagel.Tests.Training.Models;

/// <summary>The configuration of a short single-worker run that logs every step and saves only at the end.</summary>
internal static class ShortRuns
{
    public static TrainingConfiguration Configuration(string folder, int totalSteps, double lr)
    {
        TrainingConfiguration config = TrainingConfiguration.Defaults();
        config.Data.NumWorkers = 1;
        config.Training.TotalSteps = totalSteps;
        config.Training.SaveEvery = 10_000;
        config.Training.LogEvery = 1;
        config.Training.Lr = lr;
        config.Training.WarmupSteps = 0;
        config.Training.CheckpointDir = Path.Combine(folder, "checkpoints");
        config.Training.ResultsDir = folder;
        return config;
    }
}
