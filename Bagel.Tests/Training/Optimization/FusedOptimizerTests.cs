using Bagel.Core.Native;
using Bagel.Core.StateDicts;
using Bagel.Tests.Core.Randomness;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using Bagel.Training.Optimization;
using Bagel.Training.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace Bagel.Tests.Training.Optimization;

/// <summary>
/// The flat-buffer AdamW as the default (issue 11 item 4): one bucket per dtype, states built in the buffers, gradients
/// attached as views, the fused clip, frozen parameters left out, and an in-place checkpoint load keeping the layout;
/// each against TorchSharp's per-tensor AdamW bit for bit.
/// </summary>
[Collection(nameof(TorchGlobalRandomTests))] // seeds torch's process-wide generator
public sealed class FusedOptimizerTests
{
    public FusedOptimizerTests() => TorchRuntime.EnsureLoaded();

    /// <summary>A float32 trunk, a float64 head (a second dtype bucket) and a frozen layer in between.</summary>
    private static Sequential NewModel(bool headBias = true)
    {
        torch.manual_seed(11);
        var model = Sequential(("fc1", Linear(5, 7)), ("act", Tanh()), ("frozen", Linear(7, 7)), ("fc2", Linear(7, 3, hasBias: headBias)));
        ((torch.nn.Module)model[3]).to(torch.float64);
        foreach (Parameter p in ((torch.nn.Module)model[2]).parameters()) p.requires_grad = false;
        return model;
    }

    private static void Backward(Sequential model, int seed)
    {
        using var scope = torch.NewDisposeScope();
        var input = torch.randn([4, 5], generator: new torch.Generator((ulong)seed));
        var hidden = ((torch.nn.Module<torch.Tensor, torch.Tensor>)model[2]).forward(
            ((torch.nn.Module<torch.Tensor, torch.Tensor>)model[1]).forward(((torch.nn.Module<torch.Tensor, torch.Tensor>)model[0]).forward(input)));
        var output = ((torch.nn.Module<torch.Tensor, torch.Tensor>)model[3]).forward(hidden.to(torch.float64));
        output.square().mean().mul(50).backward(); // large enough that clipping to 0.5 scales every step
    }

    private static AdamW NewOptimizer(Sequential model, bool flat) =>
        AdamWFactory.Create(model, new AdamWOptions { LearningRate = 2e-2, Eps = 1e-8, WeightDecay = 0.05, FlatBuffers = flat });

    private static void AssertBitIdentical(Sequential expected, AdamW expectedOptimizer, Sequential actual, AdamW actualOptimizer)
    {
        foreach (((string name, Parameter e), (_, Parameter a)) in expected.named_parameters().Zip(actual.named_parameters()))
            Assert.True(e.Equals(a), $"parameter {name} differs");
        var expectedStates = expectedOptimizer.state_dict().State.Cast<AdamW.State>().ToList();
        var actualStates = actualOptimizer.state_dict().State.Cast<AdamW.State>().ToList();
        Assert.Equal(expectedStates.Count, actualStates.Count);
        Assert.Equal(expectedStates.Select(s => s.step), actualStates.Select(s => s.step));
        Assert.All(expectedStates.Zip(actualStates), pair =>
            Assert.True(pair.First.exp_avg.Equals(pair.Second.exp_avg) && pair.First.exp_avg_sq.Equals(pair.Second.exp_avg_sq), "a moment differs"));
    }

    [Fact]
    public void TheFactoryBuildsTheFlatOptimizerByDefaultAndThePerTensorOneOnRequest()
    {
        using Sequential model = NewModel(), other = NewModel();
        using AdamW byDefault = AdamWFactory.Create(model);
        using AdamW perTensor = AdamWFactory.Create(other, new AdamWOptions { FlatBuffers = false });
        Assert.IsType<FlatBufferAdamW>(byDefault);
        Assert.IsNotType<FlatBufferAdamW>(perTensor);
    }

    [Fact]
    public void EachDtypeGetsItsOwnBucketAndFrozenParametersStayOut()
    {
        using Sequential model = NewModel();
        Parameter[] frozen = [.. ((torch.nn.Module)model[2]).parameters()];
        using (torch.Tensor before = frozen[0].detach().clone())
        using (var optimizer = (FlatBufferAdamW)NewOptimizer(model, flat: true))
        {
            Assert.Equal(2, optimizer.Buckets.Count);
            Assert.Equal([torch.float32, torch.float64], optimizer.Buckets.Select(b => b.DType));
            Assert.Equal([5 * 7 + 7, 7 * 3 + 3], optimizer.Buckets.Select(b => b.Elements));
            Assert.DoesNotContain(optimizer.parameters(), p => frozen.Any(f => f.Handle == p.Handle));
            optimizer.AttachGradients();
            Backward(model, 1);
            optimizer.step();
            Assert.True(before.Equals(frozen[0]));
            using torch.Tensor? grad = frozen[0].grad;
            Assert.Null(grad);
        }
    }

    [Fact]
    public void ABucketOfOneKeepsItsParametersStorageAndTheOthersMoveIntoTheBuffer()
    {
        // The float64 head without its bias: one tensor of that dtype, so a bucket of one (as a large tensor gets).
        using Sequential reference = NewModel(headBias: false), flat = NewModel(headBias: false);
        Parameter head = ((torch.nn.Module)flat[3]).parameters().Single(), trunk = ((torch.nn.Module)flat[0]).parameters().First();
        using torch.Tensor headBefore = head.detach(), trunkBefore = trunk.detach();
        using AdamW referenceOptimizer = NewOptimizer(reference, flat: false);
        using var flatOptimizer = (FlatBufferAdamW)NewOptimizer(flat, flat: true);

        Assert.Equal([2, 1], flatOptimizer.Buckets.Select(b => b.Tensors));
        Assert.True(FlatLayout.SameStorage(headBefore, head), "the bucket of one copied its parameter");
        Assert.False(FlatLayout.SameStorage(trunkBefore, trunk), "the trunk's weight was not moved into the flat buffer");
        for (int step = 0; step < 3; step++)
        {
            foreach ((Sequential model, AdamW optimizer) in new[] { (reference, referenceOptimizer), (flat, (AdamW)flatOptimizer) })
            {
                Backward(model, 90 + step);
                optimizer.step();
                optimizer.zero_grad();
            }
        }
        AssertBitIdentical(reference, referenceOptimizer, flat, flatOptimizer);
        Assert.Equal(3, flatOptimizer.FlatSteps);
    }

    [Fact]
    public void NStepsWithClippingAreBitIdenticalToThePerTensorPathInBothDtypes()
    {
        using Sequential reference = NewModel(), flat = NewModel();
        using AdamW referenceOptimizer = NewOptimizer(reference, flat: false);
        using var flatOptimizer = (FlatBufferAdamW)NewOptimizer(flat, flat: true);
        var norms = new List<(double, double)>();
        for (int step = 0; step < 6; step++)
        {
            Backward(reference, 20 + step);
            Backward(flat, 20 + step);
            Assert.Equal(step > 0, flatOptimizer.GradientBuffers() is not null); // autograd's own tensors at first, views after
            norms.Add((GradientClipping.ClipGradNorm(referenceOptimizer.parameters(), 0.5), GradientClipping.ClipGradNorm(flatOptimizer, 0.5)));
            referenceOptimizer.step();
            flatOptimizer.step();
            referenceOptimizer.zero_grad();
            flatOptimizer.zero_grad();
        }
        Assert.All(norms, n => Assert.Equal(n.Item1, n.Item2));
        Assert.True(norms.All(n => n.Item1 > 0.5), "the test must clip every step");
        AssertBitIdentical(reference, referenceOptimizer, flat, flatOptimizer);
        Assert.Equal(6, flatOptimizer.FlatSteps);
    }

    [Fact]
    public void AttachedGradientsAreViewsThatAutogradAccumulatesIntoSoEveryStepIsFlat()
    {
        using Sequential reference = NewModel(), flat = NewModel();
        using AdamW referenceOptimizer = NewOptimizer(reference, flat: false);
        using var flatOptimizer = (FlatBufferAdamW)NewOptimizer(flat, flat: true);
        // What TrainingSession does before the first step: every trainable parameter gets a zero gradient.
        using (var noGrad = torch.no_grad())
        {
            foreach (Parameter p in reference.parameters().Where(p => p.requires_grad)) p.grad = torch.zeros_like(p);
        }
        flatOptimizer.AttachGradients();
        Assert.NotNull(flatOptimizer.GradientBuffers());
        for (int step = 0; step < 4; step++)
        {
            foreach ((Sequential model, AdamW optimizer) in new[] { (reference, referenceOptimizer), (flat, (AdamW)flatOptimizer) })
            {
                Backward(model, 40 + step);
                GradientClipping.ClipGradNorm(optimizer, 0.5);
                optimizer.step();
                optimizer.zero_grad();
            }
            Assert.NotNull(flatOptimizer.GradientBuffers()); // autograd wrote into the views, it did not replace them
        }
        AssertBitIdentical(reference, referenceOptimizer, flat, flatOptimizer);
        Assert.Equal(4, flatOptimizer.FlatSteps);
        Assert.Equal(0, flatOptimizer.FallbackSteps);
    }

    [Fact]
    public void ACheckpointLoadedIntoTheParametersInPlaceKeepsTheFlatLayout()
    {
        using var folder = new TempDirectory();
        string path = Path.Combine(folder.Path, "model.safetensors");
        using Sequential source = NewModel();
        using (var noGrad = torch.no_grad())
        {
            foreach (Parameter p in source.parameters()) p.add_(0.25);
        }
        StateDictSaver.SaveFile(source, path, cancellationToken: TestContext.Current.CancellationToken);

        using Sequential model = NewModel();
        using var optimizer = (FlatBufferAdamW)NewOptimizer(model, flat: true);
        StateDictLoader.Load(model, path, new StateDictLoadOptions(), TestContext.Current.CancellationToken);
        foreach (((string name, Parameter e), (_, Parameter a)) in source.named_parameters().Zip(model.named_parameters()))
            Assert.True(e.Equals(a), $"parameter {name} was not loaded");
        optimizer.AttachGradients();
        Backward(model, 3);
        optimizer.step();
        Assert.Equal(1, optimizer.FlatSteps);
    }

    [Fact]
    public void AReplacedParameterFallsBackToThePerTensorStepWithTheSameResult()
    {
        using Sequential reference = NewModel(), flat = NewModel();
        using AdamW referenceOptimizer = NewOptimizer(reference, flat: false);
        using var flatOptimizer = (FlatBufferAdamW)NewOptimizer(flat, flat: true);
        using (var noGrad = torch.no_grad())
        {
            // set_ to a fresh tensor (what moving a module does): the flat layout no longer holds, the values are equal.
            Parameter moved = ((torch.nn.Module)flat[0]).parameters().First();
            moved.set_(moved.detach().clone());
        }
        for (int step = 0; step < 3; step++)
        {
            foreach ((Sequential model, AdamW optimizer) in new[] { (reference, referenceOptimizer), (flat, (AdamW)flatOptimizer) })
            {
                Backward(model, 60 + step);
                optimizer.step();
                optimizer.zero_grad();
            }
        }
        AssertBitIdentical(reference, referenceOptimizer, flat, flatOptimizer);
        Assert.Equal(3, flatOptimizer.FallbackSteps);
    }

    [Fact]
    public void ASessionBuildsTheFusedDefaultsAndItsFirstStepIsAlreadyFlat()
    {
        using var root = new TempDirectory();
        using var model = new TinyPackedModel(seed: 1);
        TrainingConfiguration configuration = TrainingConfiguration.Defaults();
        configuration.Data.NumWorkers = 1;
        configuration.Training.CheckpointDir = Path.Combine(root.Path, "ckpt");
        configuration.Training.Ema = 0.9;
        using var session = new TrainingSession(model, configuration);
        session.Restore(TestContext.Current.CancellationToken);

        var optimizer = Assert.IsType<FlatBufferAdamW>(session.Optimizer);
        Assert.True(session.Ema.Fused);
        IReadOnlyList<torch.Tensor>? buffers = optimizer.GradientBuffers();
        Assert.NotNull(buffers); // Restore attached every gradient as a view of the flat buffer
        foreach (torch.Tensor buffer in buffers) buffer.normal_(0, 1e-2); // a backward would accumulate here
        OptimizerStepResult result = session.Stepper.Step(0, loss: 1.0);

        Assert.False(result.Skipped);
        Assert.Equal(1, optimizer.FlatSteps);
        // The stepper folded the clip scale, the EMA and the zeroing into the fused pass of every float32 bucket: no
        // separate EMA operation was left.
        Assert.Equal(optimizer.Buckets.Count, result.FoldedBuckets);
        Assert.Equal(optimizer.Buckets.Count, optimizer.FoldedBucketSteps);
        Assert.Equal(session.Model.Module.parameters().Count(p => p.requires_grad), result.FoldedEmaTensors);
        Assert.Equal(0, session.Ema.LastUpdateOperations);
        Assert.NotNull(optimizer.GradientBuffers()); // the pass zeroed the buffer, the views stay
        Assert.All(optimizer.GradientBuffers()!, b => Assert.True(b.eq(0).all().item<bool>()));

        // With the fold off the same session's next step takes one EMA multiply-add per flat buffer.
        optimizer.FoldStepperWork = false;
        foreach (torch.Tensor buffer in optimizer.GradientBuffers()!) buffer.normal_(0, 1e-2);
        result = session.Stepper.Step(1, loss: 1.0);
        Assert.Equal(0, result.FoldedBuckets);
        Assert.Equal(optimizer.Buckets.Count, session.Ema.LastUpdateOperations);
    }

    [Fact]
    [Trait("Requires", "cuda")] // .ci/gpu-check.sh runs the tests with this trait
    public void OnCudaTheFlatOptimizerAndFusedEmaMatchThePerTensorOnesBitForBit()
    {
        TorchRuntime.EnsureLoaded();
        Assert.SkipUnless(torch.cuda.is_available(), "Needs a CUDA device.");
        using Sequential reference = NewModel(), flat = NewModel();
        reference.to(torch.CUDA);
        flat.to(torch.CUDA);
        using AdamW referenceOptimizer = NewOptimizer(reference, flat: false);
        using var flatOptimizer = (FlatBufferAdamW)NewOptimizer(flat, flat: true);
        using var referenceEma = Bagel.Training.Ema.EmaModel.Create(reference, () => NewModel().to(torch.CUDA), decay: 0.9, fused: false);
        using var flatEma = Bagel.Training.Ema.EmaModel.Create(flat, () => NewModel().to(torch.CUDA), decay: 0.9);
        flatOptimizer.AttachGradients();
        using (var noGrad = torch.no_grad())
        {
            foreach (Parameter p in reference.parameters().Where(p => p.requires_grad)) p.grad = torch.zeros_like(p);
        }
        for (int step = 0; step < 4; step++)
        {
            foreach ((Sequential model, AdamW optimizer) in new[] { (reference, referenceOptimizer), (flat, (AdamW)flatOptimizer) })
            {
                using var scope = torch.NewDisposeScope();
                var input = torch.randn([4, 5], generator: new torch.Generator((ulong)(80 + step))).cuda();
                var hidden = ((torch.nn.Module<torch.Tensor, torch.Tensor>)model[2]).forward(
                    ((torch.nn.Module<torch.Tensor, torch.Tensor>)model[1]).forward(((torch.nn.Module<torch.Tensor, torch.Tensor>)model[0]).forward(input)));
                ((torch.nn.Module<torch.Tensor, torch.Tensor>)model[3]).forward(hidden.to(torch.float64)).square().mean().mul(50).backward();
                GradientClipping.ClipGradNorm(optimizer, 0.5);
                optimizer.step();
                optimizer.zero_grad();
            }
            referenceEma.Update();
            flatEma.Update();
        }
        AssertBitIdentical(reference, referenceOptimizer, flat, flatOptimizer);
        Assert.Equal(0, flatOptimizer.FallbackSteps);
        Assert.Equal(2, flatEma.LastUpdateOperations);
        foreach (((string name, Parameter e), (_, Parameter a)) in referenceEma.Module.named_parameters().Zip(flatEma.Module.named_parameters()))
            Assert.True(e.Equals(a), $"EMA parameter {name} differs on CUDA");
    }
}
