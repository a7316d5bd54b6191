using Bagel.Core.Native;
using Bagel.Tests.Core.Randomness;
using Bagel.Tests.Infrastructure;
using Bagel.Training.Optimization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Training.Optimization;

// Seeds torch's process-wide generator: runs alone, as the other global-RNG tests.
[Collection(nameof(TorchGlobalRandomTests))]
public sealed class FlatBufferAdamWTests
{
    public FlatBufferAdamWTests() => TorchRuntime.EnsureLoaded();

    /// <summary>Two linears and a third one that only some steps use (its gradient is missing at first).</summary>
    private static Sequential NewModel()
    {
        torch.manual_seed(5);
        return Sequential(("fc1", Linear(6, 9)), ("act", Tanh()), ("fc2", Linear(9, 4)), ("extra", Linear(4, 4)));
    }

    private static AdamWOptions Options(bool flat) => new() { LearningRate = 3e-2, Beta1 = 0.9, Beta2 = 0.95, Eps = 1e-8, WeightDecay = 0.1, FlatBuffers = flat };

    /// <summary>Three groups, the first with its own learning rate, the last with the layer that some steps leave out.</summary>
    private static AdamW NewOptimizer(Sequential model, bool flat) => AdamWFactory.Create(
        [new ParameterGroup("first", [.. ((torch.nn.Module)model[0]).parameters()], LearningRate: 1e-2),
         new ParameterGroup("second", [.. ((torch.nn.Module)model[2]).parameters()]),
         new ParameterGroup("extra", [.. ((torch.nn.Module)model[3]).parameters()])],
        Options(flat));

    /// <summary>Forward, loss and backward on input drawn from <paramref name="seed"/>; <paramref name="useExtra"/> routes through the last layer.</summary>
    private static void Backward(Sequential model, int seed, bool useExtra)
    {
        using var scope = torch.NewDisposeScope();
        var generator = new torch.Generator((ulong)seed);
        var input = torch.randn([5, 6], generator: generator);
        var hidden = ((torch.nn.Module<torch.Tensor, torch.Tensor>)model[2]).forward(
            ((torch.nn.Module<torch.Tensor, torch.Tensor>)model[1]).forward(((torch.nn.Module<torch.Tensor, torch.Tensor>)model[0]).forward(input)));
        if (useExtra) hidden = ((torch.nn.Module<torch.Tensor, torch.Tensor>)model[3]).forward(hidden);
        hidden.square().mean().backward();
    }

    private static void Train(Sequential model, AdamW optimizer, int fromStep, int toStep)
    {
        for (int step = fromStep; step < toStep; step++)
        {
            Backward(model, seed: 100 + step, useExtra: step >= 2);
            optimizer.step();
            optimizer.zero_grad();
        }
    }

    private static void AssertSameWeights(torch.nn.Module expected, torch.nn.Module actual)
    {
        foreach (((string name, Parameter e), (_, Parameter a)) in expected.named_parameters().Zip(actual.named_parameters()))
            Assert.True(e.Equals(a), $"parameter {name} differs");
    }

    [Fact]
    public void StepsAreBitIdenticalToTorchSharpsAdamWIncludingTheStepsWithoutEveryGradient()
    {
        using Sequential reference = NewModel(), flat = NewModel();
        using AdamW referenceOptimizer = NewOptimizer(reference, flat: false);
        using var flatOptimizer = (FlatBufferAdamW)NewOptimizer(flat, flat: true);

        Train(reference, referenceOptimizer, 0, 6);
        Train(flat, flatOptimizer, 0, 6);

        AssertSameWeights(reference, flat);
        // Steps 0 and 1 leave the extra layer without a gradient, so its group steps parameter by parameter (skipping
        // it, as TorchSharp does); from step 2 every group has all its gradients and equal step counts within itself.
        Assert.Equal(2, flatOptimizer.FallbackSteps);
        Assert.Equal(4, flatOptimizer.FlatSteps);
    }

    [Fact]
    public void WhenEveryParameterHasAGradientTheFlatLayoutRunsAndMatches()
    {
        using Sequential reference = NewModel(), flat = NewModel();
        using AdamW referenceOptimizer = AdamWFactory.Create(reference, Options(flat: false));
        using var flatOptimizer = (FlatBufferAdamW)AdamWFactory.Create(flat, Options(flat: true));
        for (int step = 0; step < 5; step++)
        {
            foreach ((Sequential model, AdamW optimizer) in new[] { (reference, referenceOptimizer), (flat, (AdamW)flatOptimizer) })
            {
                Backward(model, seed: 7 + step, useExtra: true);
                optimizer.step();
                optimizer.zero_grad();
            }
        }

        AssertSameWeights(reference, flat);
        Assert.Equal(5, flatOptimizer.FlatSteps);
        Assert.Equal(0, flatOptimizer.FallbackSteps);
        // The moments are TorchSharp's state objects, so they compare one to one.
        var expected = referenceOptimizer.state_dict().State.Cast<AdamW.State>().ToList();
        var actual = flatOptimizer.state_dict().State.Cast<AdamW.State>().ToList();
        Assert.Equal(expected.Select(s => s.step), actual.Select(s => s.step));
        Assert.All(expected.Zip(actual), pair => Assert.True(pair.First.exp_avg.Equals(pair.Second.exp_avg) && pair.First.exp_avg_sq.Equals(pair.Second.exp_avg_sq)));
    }

    [Fact]
    public void ChunkingOverTheBuffersChangesNoBit()
    {
        using Sequential whole = NewModel(), chunked = NewModel();
        var groups = (Sequential m) => new[] { new AdamW.ParamGroup([.. m.parameters()], lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1) };
        // libtorch's operations chunk by chunk (the fused float32 pass does not chunk this way).
        using var wholeOptimizer = new FlatBufferAdamW(groups(whole), 1e-2, 0.9, 0.95, 1e-8, 0.1, fusedKernel: false);
        using var chunkedOptimizer = new FlatBufferAdamW(groups(chunked), 1e-2, 0.9, 0.95, 1e-8, 0.1, chunkElements: 7, fusedKernel: false);
        for (int step = 0; step < 4; step++)
        {
            foreach ((Sequential model, AdamW optimizer) in new[] { (whole, (AdamW)wholeOptimizer), (chunked, chunkedOptimizer) })
            {
                Backward(model, seed: 40 + step, useExtra: true);
                optimizer.step();
                optimizer.zero_grad();
            }
        }
        AssertSameWeights(whole, chunked);
        Assert.Equal(4, chunkedOptimizer.FlatSteps);
    }

    [Fact]
    public void SavedStateResumesExactlyAndCrossesOverToTorchSharpsAdamW()
    {
        using var folder = new TempDirectory();
        string path = Path.Combine(folder.Path, AdamWStateFile.FileName);
        using Sequential straight = NewModel();
        using (AdamW optimizer = AdamWFactory.Create(straight, Options(flat: false))) Train(straight, optimizer, 0, 6);

        foreach ((bool firstFlat, bool secondFlat) in new[] { (true, true), (true, false), (false, true) })
        {
            using Sequential first = NewModel();
            using (AdamW optimizer = AdamWFactory.Create(first, Options(firstFlat)))
            {
                Train(first, optimizer, 0, 3);
                AdamWStateFile.Save(optimizer, path, TestContext.Current.CancellationToken);
            }
            using Sequential second = NewModel();
            using (var noGrad = torch.no_grad())
            {
                foreach ((Parameter target, Parameter source) in second.parameters().Zip(first.parameters())) target.copy_(source);
            }
            using AdamW resumed = AdamWFactory.Create(second, Options(secondFlat));
            AdamWStateFile.Load(resumed, path);
            Train(second, resumed, 3, 6);
            AssertSameWeights(straight, second);
        }
    }

    [Fact]
    public void ParametersKeepTheirValuesAndHandlesWhenMovedIntoTheBuffers()
    {
        using Sequential model = NewModel(), copy = NewModel();
        IntPtr[] handles = [.. model.parameters().Select(p => p.Handle)];
        using AdamW optimizer = AdamWFactory.Create(model, Options(flat: true));
        Assert.Equal(handles, model.parameters().Select(p => p.Handle));
        AssertSameWeights(copy, model);
    }

    [Fact]
    public void AmsGradIsRefusedWithAMessage()
    {
        using Sequential model = NewModel();
        var group = new AdamW.ParamGroup([.. model.parameters()], lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0, amsgrad: true);
        var error = Assert.Throws<NotSupportedException>(() => new FlatBufferAdamW([group], 1e-3, 0.9, 0.95, 1e-8, 0));
        Assert.Contains("AMSGrad", error.Message, StringComparison.Ordinal);
    }
}
