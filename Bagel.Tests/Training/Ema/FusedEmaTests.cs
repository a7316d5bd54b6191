using Bagel.Core.Native;
using Bagel.Tests.Core.Randomness;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Ema;
using Bagel.Training.Optimization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Training.Ema;

/// <summary>
/// The fused EMA update (issue 11 item 4): one multiply-add per flat buffer when the live model is laid out by the flat
/// optimizer, the same bits as the per-tensor update, frozen parameters left alone, and saved files unchanged.
/// </summary>
[Collection(nameof(TorchGlobalRandomTests))] // seeds torch's process-wide generator
public sealed class FusedEmaTests
{
    public FusedEmaTests() => TorchRuntime.EnsureLoaded();

    /// <summary>Three layers, the middle one frozen, the last in float64 (a second dtype).</summary>
    private static Sequential NewModel(long seed)
    {
        torch.manual_seed(seed);
        var model = Sequential(("fc1", Linear(6, 5)), ("frozen", Linear(5, 5)), ("fc2", Linear(5, 3)));
        ((torch.nn.Module)model[2]).to(torch.float64);
        foreach (Parameter p in ((torch.nn.Module)model[1]).parameters()) p.requires_grad = false;
        return model;
    }

    /// <summary>A few optimizer steps with gradients drawn from <paramref name="seed"/> (no forward needed).</summary>
    private static void Step(Sequential model, AdamW optimizer, int seed)
    {
        var generator = new torch.Generator((ulong)seed);
        using (var noGrad = torch.no_grad())
        {
            foreach (Parameter p in model.parameters().Where(p => p.requires_grad))
            {
                using torch.Tensor? grad = p.grad;
                using torch.Tensor random = torch.randn(p.shape, generator: generator).to(p.dtype);
                if (grad is null) p.grad = random.clone();
                else grad.copy_(random);
            }
        }
        optimizer.step();
        optimizer.zero_grad();
    }

    private static void AssertSame(torch.nn.Module expected, torch.nn.Module actual)
    {
        foreach (((string name, Parameter e), (_, Parameter a)) in expected.named_parameters().Zip(actual.named_parameters()))
            Assert.True(e.Equals(a), $"EMA parameter {name} differs");
    }

    [Fact]
    public void OverTheFlatOptimizerTheUpdateTakesOneOperationPerDtypeAndMatchesThePerTensorOneBitForBit()
    {
        using Sequential reference = NewModel(1), fused = NewModel(1);
        using AdamW referenceOptimizer = AdamWFactory.Create(reference, new AdamWOptions { FlatBuffers = false, LearningRate = 0.05 });
        using AdamW fusedOptimizer = AdamWFactory.Create(fused, new AdamWOptions { LearningRate = 0.05 });
        using EmaModel referenceEma = EmaModel.Create(reference, () => NewModel(2), decay: 0.9, fused: false);
        using EmaModel fusedEma = EmaModel.Create(fused, () => NewModel(2), decay: 0.9);
        Assert.True(fusedEma.Fused);
        Assert.False(referenceEma.Fused);
        torch.Tensor frozenBefore = ((torch.nn.Module)fusedEma.Module).named_parameters().Single(p => p.name == "frozen.weight").parameter.detach().clone();

        for (int step = 0; step < 5; step++)
        {
            Step(reference, referenceOptimizer, 30 + step);
            Step(fused, fusedOptimizer, 30 + step);
            Assert.Equal(referenceEma.Update(), fusedEma.Update());
        }

        AssertSame(referenceEma.Module, fusedEma.Module);
        Assert.Equal(4, referenceEma.LastUpdateOperations); // fc1 and fc2, weight and bias each
        Assert.Equal(2, fusedEma.LastUpdateOperations);     // one float32 run, one float64 run
        Assert.True(frozenBefore.Equals(fusedEma.Module.named_parameters().Single(p => p.name == "frozen.weight").parameter));
        frozenBefore.Dispose();
    }

    [Fact]
    public void OverThePerTensorOptimizerTheFusedEmaUpdatesEachTensorWithTheSameBits()
    {
        using Sequential reference = NewModel(3), live = NewModel(3);
        using AdamW referenceOptimizer = AdamWFactory.Create(reference, new AdamWOptions { FlatBuffers = false });
        using AdamW liveOptimizer = AdamWFactory.Create(live, new AdamWOptions { FlatBuffers = false });
        using EmaModel referenceEma = EmaModel.Create(reference, () => NewModel(4), decay: 0.99, fused: false);
        using EmaModel fusedEma = EmaModel.Create(live, () => NewModel(4), decay: 0.99);
        for (int step = 0; step < 3; step++)
        {
            Step(reference, referenceOptimizer, 50 + step);
            Step(live, liveOptimizer, 50 + step);
            referenceEma.Update();
            fusedEma.Update();
        }
        AssertSame(referenceEma.Module, fusedEma.Module);
        Assert.Equal(4, fusedEma.LastUpdateOperations); // nothing lies end to end in the live model
    }

    [Fact]
    public void FusedEmaTensorsMatchThePerTensorOnesAndSaveTheSameFile()
    {
        using var folder = new TempDirectory();
        using Sequential model = NewModel(5);
        using AdamW optimizer = AdamWFactory.Create(model, new AdamWOptions { LearningRate = 0.05 });
        var named = model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        using var perTensor = new EmaTensors(named, decay: 0.8, fused: false);
        using var fused = new EmaTensors(named, decay: 0.8);
        for (int step = 0; step < 3; step++)
        {
            Step(model, optimizer, 70 + step);
            Assert.Equal(perTensor.Update(), fused.Update());
        }
        foreach (string name in perTensor.Names) Assert.True(perTensor[name].Equals(fused[name]), $"EMA tensor {name} differs");
        string a = Path.Combine(folder.Path, "a.safetensors"), b = Path.Combine(folder.Path, "b.safetensors");
        perTensor.Save(a, TestContext.Current.CancellationToken);
        fused.Save(b, TestContext.Current.CancellationToken);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
    }
}
