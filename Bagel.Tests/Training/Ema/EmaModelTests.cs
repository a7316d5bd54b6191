using Bagel.Tests.Core.Randomness;
using Bagel.Core.Native;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Ema;
using TorchSharp;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Training.Ema;

// Seeds or draws from torch's process-wide generator: runs alone, as the other global-RNG tests.
[Collection(nameof(TorchGlobalRandomTests))]
public sealed class EmaModelTests
{
    public EmaModelTests() => TorchRuntime.EnsureLoaded();

    private static torch.nn.Module NewModel(long seed)
    {
        torch.manual_seed(seed);
        return Sequential(("fc1", Linear(3, 4)), ("fc2", Linear(4, 2)));
    }

    private static torch.Tensor Param(torch.nn.Module module, string name) =>
        module.named_parameters().Single(p => p.name == name).parameter;

    private static void Perturb(torch.nn.Module module, long seed)
    {
        torch.manual_seed(seed);
        using var noGrad = torch.no_grad();
        foreach (var parameter in module.parameters()) parameter.add_(torch.randn_like(parameter));
    }

    [Fact]
    public void CreateCopiesTheLiveWeightsIntoAFrozenEvalModule()
    {
        using var scope = torch.NewDisposeScope();
        var live = NewModel(1);
        using EmaModel ema = EmaModel.Create(live, () => NewModel(2), decay: 0.9);

        Assert.NotSame(live, ema.Module);
        Assert.All(ema.Module.parameters(), p => Assert.False(p.requires_grad));
        Assert.False(ema.Module.training);
        Assert.True(Param(live, "fc1.weight").Equals(Param(ema.Module, "fc1.weight")));
    }

    [Fact]
    public void UpdateIsDecayTimesEmaPlusOneMinusDecayTimesParamOnlyWhereGradIsRequired()
    {
        using var scope = torch.NewDisposeScope();
        var live = NewModel(1);
        using EmaModel ema = EmaModel.Create(live, () => NewModel(2), decay: 0.9);
        Param(live, "fc2.weight").requires_grad = false; // frozen after the copy: its EMA keeps its loaded value
        torch.Tensor emaBefore = Param(ema.Module, "fc1.weight").clone();
        torch.Tensor frozenBefore = Param(ema.Module, "fc2.weight").clone();
        Perturb(live, 7);

        int updated = ema.Update();

        Assert.Equal(3, updated);
        torch.Tensor expected = emaBefore * 0.9 + Param(live, "fc1.weight").detach() * (1 - 0.9);
        Assert.True(expected.allclose(Param(ema.Module, "fc1.weight"), rtol: 0, atol: 1e-7));
        Assert.True(frozenBefore.Equals(Param(ema.Module, "fc2.weight")));
        Assert.False(frozenBefore.Equals(Param(live, "fc2.weight")));
    }

    [Fact]
    public void UpdateUsesTheReferencesMultiplyThenAddOrderBitForBit()
    {
        using var scope = torch.NewDisposeScope();
        var live = NewModel(1);
        using EmaModel ema = EmaModel.Create(live, () => NewModel(2), decay: 0.9999);
        Perturb(live, 3);
        torch.Tensor expected = Param(ema.Module, "fc1.bias").clone().mul_(0.9999).add_(Param(live, "fc1.bias").detach(), alpha: 1 - 0.9999);

        ema.Update();

        Assert.True(expected.Equals(Param(ema.Module, "fc1.bias")));
    }

    [Fact]
    public void SaveAndLoadRoundTripThroughSafetensors()
    {
        using var scope = torch.NewDisposeScope();
        using var folder = new TempDirectory();
        var live = NewModel(1);
        using EmaModel ema = EmaModel.Create(live, () => NewModel(2), decay: 0.5);
        Perturb(live, 4);
        ema.Update();
        string path = folder.File(EmaModel.FileName);
        ema.Save(path, TestContext.Current.CancellationToken);

        using EmaModel other = EmaModel.Create(NewModel(9), () => NewModel(10));
        other.Load(path, cancellationToken: TestContext.Current.CancellationToken);

        foreach ((string name, var parameter) in ema.Module.named_parameters())
            Assert.True(parameter.Equals(Param(other.Module, name)), name);
    }

    [Fact]
    public void AFactoryBuildingAnotherArchitectureIsRefusedNamingTheParameter()
    {
        using var scope = torch.NewDisposeScope();
        var live = NewModel(1);

        var exception = Assert.Throws<EmaMismatchException>(() => EmaModel.Create(live, () => Sequential(("fc1", Linear(3, 5)), ("fc2", Linear(5, 2)))));

        Assert.Contains("fc1.weight", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TensorListEmaMatchesTheModuleEmaAndRoundTrips()
    {
        using var scope = torch.NewDisposeScope();
        using var folder = new TempDirectory();
        var live = NewModel(1);
        using EmaModel module = EmaModel.Create(live, () => NewModel(2), decay: 0.8);
        using var tensors = new EmaTensors(live.named_parameters(), decay: 0.8);
        Perturb(live, 5);

        module.Update();
        Assert.Equal(4, tensors.Update());

        foreach (string name in tensors.Names) Assert.True(tensors[name].Equals(Param(module.Module, name)), name);
        string path = folder.File("ema.safetensors");
        tensors.Save(path, TestContext.Current.CancellationToken);
        using var restored = new EmaTensors(NewModel(3).named_parameters());
        restored.Load(path);
        foreach (string name in tensors.Names) Assert.True(tensors[name].Equals(restored[name]), name);
    }

    [Fact]
    public void ADecayOutsideZeroToOneIsRefusedBeforeTheFactoryRuns()
    {
        using var scope = torch.NewDisposeScope();
        bool built = false;

        Assert.Throws<ArgumentOutOfRangeException>(() => EmaModel.Create(NewModel(1), () => { built = true; return NewModel(2); }, decay: 1.5));

        Assert.False(built);
    }
}
