using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Models.Generation;
using Bagel.Models.Memory;
using Bagel.Models.Qwen2;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Models.Qwen2;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Memory;

/// <summary>
/// <see cref="IDecoderLayerHooks"/> on the tiny BAGEL model: a hook that keeps every decoder layer's parameters aside
/// and leaves the layers empty except while they run (what sharded training does with gathered buffers) gives the
/// same losses and gradients, bit for bit, as no hook.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class DecoderLayerHooksTests
{
    private const int Layers = 3;

    private static BagelModel NewModel(bool checkpointing)
    {
        torch.manual_seed(7);
        var model = new BagelModel(BagelTestModels.Config() with { LlmConfig = Qwen2Fixtures.Tiny() with { NumHiddenLayers = Layers } });
        // A trained llm2vae is not zero; with the zero init no MSE gradient would reach the layers.
        using (no_grad()) model.Llm2Vae!.weight!.normal_(0, 0.1, new Generator(4));
        model.LanguageModel.Model.GradientCheckpointing = checkpointing;
        model.train();
        return model;
    }

    private static PackedBatch Batch(int microBatch) => microBatch == 0
        ? BagelTestModels.Pack(BagelTestModels.T2I(), BagelTestModels.Vlm(1), BagelTestModels.Edit(2))
        : BagelTestModels.Pack(BagelTestModels.Edit(3), BagelTestModels.TextOnly(4), BagelTestModels.T2I(5));

    /// <summary>Forward and backward of one micro-batch; returns the total loss.</summary>
    private static float Step(BagelModel model, int microBatch)
    {
        using PackedBatch batch = Batch(microBatch);
        IReadOnlyList<Tensor> latents = BagelTestModels.RandomLatents(batch, seed: 5 + (long)microBatch)!;
        try
        {
            using BagelForwardOutput output = model.Forward(batch, latents, new SeededRandomSource(3 + (ulong)microBatch));
            using BagelLosses losses = BagelLoss.Reduce(output, batch, LossNormalizers.SingleProcess(batch));
            losses.Total.backward();
            return losses.Total.item<float>();
        }
        finally
        {
            foreach (Tensor latent in latents) latent.Dispose();
        }
    }

    private static Dictionary<string, Tensor> Grads(BagelModel model) =>
        model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());

    private static void AssertBitExact(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        Assert.Contains(expected.Keys, k => k.StartsWith("language_model.model.layers.", StringComparison.Ordinal));
        foreach ((string name, Tensor grad) in expected)
            Assert.True(BitEqual(grad, actual[name]), $"{name} differs with the hook");
    }

    private static bool BitEqual(Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.data<float>().ToArray().SequenceEqual(b.data<float>().ToArray());

    private static void DisposeAll(Dictionary<string, Tensor> tensors)
    {
        foreach (Tensor t in tensors.Values) t.Dispose();
    }

    [Fact]
    public void ReleasingHook_WithCheckpointing_GivesBitExactLossesAndGradients_InForwardThenReverseOrder()
    {
        float expectedLoss;
        Dictionary<string, Tensor> expected;
        using (BagelModel plain = NewModel(checkpointing: true))
        {
            expectedLoss = Step(plain, 0);
            expected = Grads(plain);
        }

        using BagelModel model = NewModel(checkpointing: true);
        using var hook = new ReleasingHook(model.LanguageModel.Model);
        model.LanguageModel.Model.LayerHooks = hook;
        float loss = Step(model, 0);
        // Between the passes every layer is released.
        Assert.All(hook.LayerParameters.SelectMany(l => l), p => Assert.Equal(0, p.numel()));
        hook.RestoreAll();
        Dictionary<string, Tensor> actual = Grads(model);

        Assert.Equal(expectedLoss, loss);
        AssertBitExact(expected, actual);
        Assert.Equal(["F0+", "F0-", "F1+", "F1-", "F2+", "F2-", "B2+", "B2-", "B1+", "B1-", "B0+", "B0-"], hook.Events);
        Assert.Empty(hook.Violations);
        DisposeAll(expected);
        DisposeAll(actual);
    }

    [Fact]
    public void ReleasingHook_InTwoMicroBatchAccumulation_FiresOncePerBackwardAndGradientsAccumulate()
    {
        float[] expectedLosses = new float[2];
        Dictionary<string, Tensor> expectedFirst, expected;
        using (BagelModel plain = NewModel(checkpointing: true))
        {
            expectedLosses[0] = Step(plain, 0);
            expectedFirst = Grads(plain);
            expectedLosses[1] = Step(plain, 1);
            expected = Grads(plain);
        }

        using BagelModel model = NewModel(checkpointing: true);
        using var hook = new ReleasingHook(model.LanguageModel.Model);
        model.LanguageModel.Model.LayerHooks = hook;
        float first = Step(model, 0);
        int afterFirst = hook.Events.Count;
        hook.RestoreAll();
        Dictionary<string, Tensor> actualFirst = Grads(model);
        hook.ReleaseAll();
        float second = Step(model, 1);
        hook.RestoreAll();
        Dictionary<string, Tensor> actual = Grads(model);

        Assert.Equal(expectedLosses, new[] { first, second });
        AssertBitExact(expectedFirst, actualFirst);
        AssertBitExact(expected, actual);
        // The second micro-batch added to the first one's gradients.
        Assert.Contains(expected.Keys, k => k.StartsWith("language_model.model.layers.", StringComparison.Ordinal) && !BitEqual(actual[k], actualFirst[k]));
        Assert.Equal(4 * Layers, afterFirst);
        Assert.Equal(hook.Events.Take(afterFirst), hook.Events.Skip(afterFirst));
        for (int i = 0; i < Layers; i++) Assert.Equal(2, hook.Events.Count(e => e == $"B{i}-"));
        Assert.Empty(hook.Violations);
        foreach (var d in new[] { expectedFirst, expected, actualFirst, actual }) DisposeAll(d);
    }

    [Fact]
    public void WithoutCheckpointing_OnlyForwardHooksFire_NotReleasable_AndReleasingIsRefused()
    {
        using (BagelModel model = NewModel(checkpointing: false))
        {
            var recorder = new RecordingHook();
            model.LanguageModel.Model.LayerHooks = recorder;
            Step(model, 0);
            Assert.Equal(["F0+ graph", "F0- graph", "F1+ graph", "F1- graph", "F2+ graph", "F2- graph"], recorder.Events);
        }

        using (BagelModel model = NewModel(checkpointing: false))
        {
            using var hook = new ReleasingHook(model.LanguageModel.Model);
            model.LanguageModel.Model.LayerHooks = hook;
            var error = Assert.Throws<InvalidOperationException>(() => Step(model, 0));
            Assert.Contains("layers.0.", error.Message, StringComparison.Ordinal);
            Assert.Contains("GradientCheckpointing", error.Message, StringComparison.Ordinal);
            hook.RestoreAll();
        }
    }

    [Fact]
    public void WithoutGradients_TheForwardIsReleasable_AndTheReleasingHookGivesTheSameLosses()
    {
        float Evaluate(BagelModel model)
        {
            using var noGrad = no_grad();
            using PackedBatch batch = Batch(0);
            IReadOnlyList<Tensor> latents = BagelTestModels.RandomLatents(batch)!;
            using BagelForwardOutput output = model.Forward(batch, latents, new SeededRandomSource(3));
            using BagelLosses losses = BagelLoss.Reduce(output, batch, LossNormalizers.SingleProcess(batch));
            foreach (Tensor latent in latents) latent.Dispose();
            return losses.Total.item<float>();
        }

        float expected;
        using (BagelModel plain = NewModel(checkpointing: false)) expected = Evaluate(plain);
        using BagelModel model = NewModel(checkpointing: false);
        using var hook = new ReleasingHook(model.LanguageModel.Model);
        model.LanguageModel.Model.LayerHooks = hook;
        Assert.Equal(expected, Evaluate(model));
        Assert.Equal(["F0+", "F0-", "F1+", "F1-", "F2+", "F2-"], hook.Events);
        Assert.Empty(hook.Violations);
        hook.RestoreAll();
    }

    [Fact]
    public void ForwardInference_CallsTheForwardHooks_AndAReleasingHookGivesTheSameOutput()
    {
        using var noGrad = no_grad();
        torch.manual_seed(9);
        using var model = new Qwen2Model(Qwen2Fixtures.Tiny() with { NumHiddenLayers = Layers });
        using Tensor x = randn(5, model.Config.HiddenSize);
        using Tensor positions = arange(5, dtype: int64);
        using var plainCache = new KvCache(Layers);
        using Tensor expected = model.ForwardInference(x, positions, plainCache, causal: true, updateCache: true);

        using var hook = new ReleasingHook(model);
        model.LayerHooks = hook;
        using var cache = new KvCache(Layers);
        using Tensor actual = model.ForwardInference(x, positions, cache, causal: true, updateCache: true);
        Assert.True(BitEqual(expected, actual), "the output differs with the hook");
        Assert.Equal(["F0+", "F0-", "F1+", "F1-", "F2+", "F2-"], hook.Events);
        Assert.Empty(hook.Violations);
        hook.RestoreAll();
    }

    [Fact]
    public void AnExceptionFromABackwardHook_ReachesTheCallerOfBackward()
    {
        // It must not cross libtorch's engine (that aborts the process): backward() throws libtorch's error, the cause
        // is kept for TakeBackwardFailure, and ActivationCheckpoint.Backward rethrows the cause itself.
        using BagelModel model = NewModel(checkpointing: true);
        model.LanguageModel.Model.LayerHooks = new ThrowingHook();
        using PackedBatch batch = Batch(0);
        IReadOnlyList<Tensor> latents = BagelTestModels.RandomLatents(batch)!;
        for (int attempt = 0; attempt < 2; attempt++)
        {
            using BagelForwardOutput output = model.Forward(batch, latents, new SeededRandomSource(3));
            using BagelLosses losses = BagelLoss.Reduce(output, batch, LossNormalizers.SingleProcess(batch));
            if (attempt == 0)
            {
                var engineError = Assert.ThrowsAny<Exception>(() => losses.Total.backward());
                Assert.Contains("invalid gradient", engineError.Message, StringComparison.Ordinal);
                Exception? cause = ActivationCheckpoint.TakeBackwardFailure();
                Assert.IsType<InvalidOperationException>(cause);
                Assert.Equal("hook failed at layer 2", cause.Message);
                Assert.Null(ActivationCheckpoint.TakeBackwardFailure());
            }
            else
            {
                var error = Assert.Throws<InvalidOperationException>(() => ActivationCheckpoint.Backward(losses.Total));
                Assert.Equal("hook failed at layer 2", error.Message);
            }
        }
        foreach (Tensor latent in latents) latent.Dispose();
    }

    private sealed class ThrowingHook : IDecoderLayerHooks
    {
        public void BeforeForward(int layerIndex, bool parametersReleasable)
        {
        }

        public void AfterForward(int layerIndex, bool parametersReleasable)
        {
        }

        public void BeforeBackward(int layerIndex) => throw new InvalidOperationException($"hook failed at layer {layerIndex}");

        public void AfterBackward(int layerIndex)
        {
        }
    }

    /// <summary>Records the calls; releases nothing.</summary>
    private sealed class RecordingHook : IDecoderLayerHooks
    {
        public List<string> Events { get; } = [];

        public void BeforeForward(int layerIndex, bool parametersReleasable) => Events.Add($"F{layerIndex}+ {(parametersReleasable ? "free" : "graph")}");

        public void AfterForward(int layerIndex, bool parametersReleasable) => Events.Add($"F{layerIndex}- {(parametersReleasable ? "free" : "graph")}");

        public void BeforeBackward(int layerIndex) => Events.Add($"B{layerIndex}+");

        public void AfterBackward(int layerIndex) => Events.Add($"B{layerIndex}-");
    }

    /// <summary>
    /// Keeps each decoder layer's parameter values aside and <c>set_</c>s the parameters to empty tensors except
    /// between Before* and After*; checks that a layer about to run is empty, that no other layer is filled, and that
    /// a layer's gradients exist at AfterBackward.
    /// </summary>
    private sealed class ReleasingHook : IDecoderLayerHooks, IDisposable
    {
        private readonly List<Tensor[]> _values;

        public ReleasingHook(Qwen2Model model)
        {
            LayerParameters = [.. model.Layers.Select(l => l.parameters().ToArray())];
            Assert.Equal(Layers, LayerParameters.Count);
            using (no_grad())
                _values = [.. LayerParameters.Select(ps => ps.Select(p => p.detach().clone().DetachFromDisposeScope()).ToArray())];
            ReleaseAll();
        }

        public List<Parameter[]> LayerParameters { get; }

        public List<string> Events { get; } = [];

        public List<string> Violations { get; } = [];

        public void BeforeForward(int layerIndex, bool parametersReleasable)
        {
            Events.Add($"F{layerIndex}+");
            if (!parametersReleasable) Violations.Add($"F{layerIndex}: not releasable");
            Fill(layerIndex);
        }

        public void AfterForward(int layerIndex, bool parametersReleasable)
        {
            Events.Add($"F{layerIndex}-");
            Release(layerIndex);
        }

        public void BeforeBackward(int layerIndex)
        {
            Events.Add($"B{layerIndex}+");
            Fill(layerIndex);
        }

        public void AfterBackward(int layerIndex)
        {
            Events.Add($"B{layerIndex}-");
            if (LayerParameters[layerIndex].Any(p => p.requires_grad && p.grad is null))
                Violations.Add($"B{layerIndex}: a parameter has no gradient at AfterBackward");
            Release(layerIndex);
        }

        private void Fill(int layer)
        {
            if (torch.is_grad_enabled()) Violations.Add($"{layer}: hook called with grad enabled");
            for (int l = 0; l < LayerParameters.Count; l++)
            {
                if (LayerParameters[l].Any(p => p.numel() != 0))
                    Violations.Add($"{layer}: layer {l} holds elements while released");
            }
            Parameter[] parameters = LayerParameters[layer];
            for (int k = 0; k < parameters.Length; k++) parameters[k].set_(_values[layer][k]);
        }

        private void Release(int layer)
        {
            foreach (Parameter p in LayerParameters[layer])
                p.set_(torch.empty(0, p.dtype, p.device).DetachFromDisposeScope());
        }

        public void ReleaseAll()
        {
            using (no_grad())
                for (int l = 0; l < LayerParameters.Count; l++) Release(l);
        }

        public void RestoreAll()
        {
            using (no_grad())
                for (int l = 0; l < LayerParameters.Count; l++)
                {
                    Parameter[] parameters = LayerParameters[l];
                    for (int k = 0; k < parameters.Length; k++) parameters[k].set_(_values[l][k]);
                }
        }

        public void Dispose()
        {
            foreach (Tensor t in _values.SelectMany(v => v)) t.Dispose();
        }
    }
}
