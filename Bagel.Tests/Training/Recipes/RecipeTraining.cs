using Bagel.Training.Loop;
using Bagel.Training.Recipes;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Tests.Training.Recipes;

/// <summary>Runs a built recipe through the trainer and keeps every step report.</summary>
internal static class RecipeTraining
{
    public static async Task<(TrainingRunResult Result, List<TrainingStepReport> Steps)> TrainAsync(BagelRun run, ILoggerFactory? loggers = null,
        Action<TrainingStepReport>? onStep = null)
    {
        var steps = new List<TrainingStepReport>();
        TrainerBuilder builder = new TrainerBuilder().UseRecipe(run).OnStep(steps.Add);
        if (loggers is not null) builder.UseLogger(loggers);
        if (onStep is not null) builder.OnStep(onStep);
        using Trainer trainer = builder.Build();
        TrainingRunResult result = await trainer.RunAsync(TestContext.Current.CancellationToken);
        return (result, steps);
    }

    /// <summary>Detached copies of a module's state, to compare after training.</summary>
    public static Dictionary<string, torch.Tensor> Snapshot(torch.nn.Module module) =>
        module.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());

    /// <summary>The keys whose values differ from <paramref name="before"/>.</summary>
    public static List<string> Changed(torch.nn.Module module, Dictionary<string, torch.Tensor> before) =>
        [.. module.state_dict().Where(p => !p.Value.allclose(before[p.Key], rtol: 0, atol: 0)).Select(p => p.Key)];
}
