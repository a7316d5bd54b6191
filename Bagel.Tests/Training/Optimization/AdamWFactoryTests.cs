using Bagel.Core.Native;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Training.Optimization;

public sealed class AdamWFactoryTests
{
    public AdamWFactoryTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void OnlyParametersThatRequireGradAreOptimisedWithTheReferencesSettings()
    {
        using var model = Sequential(("fc1", Linear(2, 3)), ("fc2", Linear(3, 1)));
        foreach (Parameter parameter in ((torch.nn.Module)model).named_parameters().Where(p => p.name.StartsWith("fc1", StringComparison.Ordinal)).Select(p => p.parameter))
            parameter.requires_grad = false;

        using AdamW optimizer = AdamWFactory.Create(model, AdamWOptions.FromTrainingOptions(new TrainingOptions()));

        Assert.Equal(2, optimizer.parameters().Count());
        var options = (AdamW.Options)optimizer.state_dict().Options.Single();
        Assert.Equal((0.9, 0.95, 1e-15, 0.0, 1e-4), (options.beta1!.Value, options.beta2!.Value, options.eps!.Value, options.weight_decay!.Value, options.LearningRate!.Value));
    }

    [Fact]
    public void GroupsKeepTheirOwnLearningRateAndEmptyGroupsAreDropped()
    {
        var a = new Parameter(torch.zeros(2));
        var frozen = new Parameter(torch.zeros(2), requires_grad: false);

        using AdamW optimizer = AdamWFactory.Create([new ParameterGroup("a", [a], LearningRate: 3e-4), new ParameterGroup("frozen", [frozen])]);

        Assert.Equal([3e-4], optimizer.ParamGroups.Select(g => g.LearningRate));
    }

    [Fact]
    public void NothingTrainableOrAParameterInTwoGroupsIsRefused()
    {
        var a = new Parameter(torch.zeros(2));
        var frozen = new Parameter(torch.zeros(2), requires_grad: false);

        Assert.Contains("freeze", Assert.Throws<ArgumentException>(() => AdamWFactory.Create([new ParameterGroup("f", [frozen])])).Message, StringComparison.Ordinal);
        Assert.Contains("'b'", Assert.Throws<ArgumentException>(() => AdamWFactory.Create([new ParameterGroup("a", [a]), new ParameterGroup("b", [a])])).Message, StringComparison.Ordinal);
    }
}
