using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Core.SafeTensors;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using Bagel.Models.Lora;
using Bagel.Tests.Infrastructure;
using Bagel.Tests.Models.Bagel;
using Bagel.Tests.Models.Lora;
using Bagel.Training.Loop;
using Bagel.Training.Lora;
using Bagel.Training.Models;
using Bagel.Training.Precision;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Training.Lora;

/// <summary>
/// LoRA under bf16 mixed precision on the tiny BAGEL: the frozen base is held once, in bf16; the adapters keep float32
/// masters and run through a bf16 working copy; step 0 equals the bf16 base model exactly; the merged export keeps the
/// reference layout.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class LoraBf16Tests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static LoraOptions Options => new() { Rank = 4, Alpha = 8, TargetModules = [LoraTargets.AllLinear] };

    /// <summary>CE per token and squared error of one forward of the policy's compute model (detached copies).</summary>
    private static (Tensor Ce, Tensor Mse) Losses(IPrecisionPolicy policy, PackedBatch batch, bool backward = false)
    {
        policy.BeforeForward();
        using var scope = torch.NewDisposeScope();
        ModelLossOutputs outputs = policy.ComputeModel.Forward(batch);
        if (backward)
        {
            outputs.CePerToken!.sum().add(outputs.MseSquaredError!.mean()).backward();
            policy.AfterBackward();
        }
        return (outputs.CePerToken!.detach().clone().MoveToOuterDisposeScope(), outputs.MseSquaredError!.detach().clone().MoveToOuterDisposeScope());
    }

    [Fact]
    public void TheBaseIsHeldOnceInBf16TheAdaptersKeepFloat32MastersAndStepZeroEqualsTheBf16BaseModelExactly()
    {
        using PackedBatch batch = LoraTestModels.MixedBatch();
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);

        // The bf16 base model's losses: full bf16 mixed precision over the same float32 weights.
        (Tensor Ce, Tensor Mse) reference;
        using (BagelModel plain = BagelTestModels.Model())
        using (var noise = new SeededRandomSource(22))
        using (IPrecisionPolicy policy = new Bf16MixedPrecisionPolicy(new BagelTrainingModel(plain, vae, () => BagelTestModels.Model(seed: 99), noise)))
            reference = Losses(policy, batch);

        using BagelModel model = BagelTestModels.Model();
        using var loraNoise = new SeededRandomSource(22);
        using var lora = new LoraTrainableModel(new BagelTrainingModel(model, vae, () => BagelTestModels.Model(seed: 99), loraNoise), Options);
        Tensor[] frozenBefore = [.. model.parameters()];
        using (var bf16 = new Bf16MixedPrecisionPolicy(lora))
        {
            // The base: cast in place (its float32 tensors are gone), frozen, and nowhere else — the working copy holds
            // only the adapters. The VAE (a float32 island, never trained) stays float32.
            Assert.All(model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
            Assert.All(model.parameters(), p => Assert.False(p.requires_grad));
            Assert.All(frozenBefore, t => Assert.True(t.IsInvalid || t.dtype == ScalarType.BFloat16, "a float32 base tensor is still alive"));
            Assert.All(vae.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
            Assert.All(lora.Adapters.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
            Assert.All(bf16.WorkingModule.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
            Assert.Equal(lora.Adapters.ParameterCount, bf16.WorkingModule.parameters().Sum(p => p.numel()));
            LoraAdapterSet working = Assert.IsType<LoraAdapterSet>(bf16.WorkingModule);
            Assert.All(lora.Adapters.Layers.Zip(working.Layers), pair => Assert.Same(pair.Second, pair.First.WorkingCopy));

            // Step 0 (B = 0): the LoRA-bf16 losses are the bf16 base model's, bit for bit; the backward reaches the
            // float32 master adapters only, and the bf16 gradients are freed.
            (Tensor ce, Tensor mse) = Losses(bf16, batch, backward: true);
            Assert.True(LoraTestModels.BitEqual(ce, reference.Ce), "CE differs from the bf16 base model's");
            Assert.True(LoraTestModels.BitEqual(mse, reference.Mse), "MSE differs from the bf16 base model's");
            Assert.All(model.parameters(), p => Assert.Null(p.grad));
            Assert.All(working.parameters(), p => Assert.Null(p.grad));
            Assert.All(lora.Adapters.Layers, l =>
            {
                using Tensor? grad = l.WeightB.grad;
                Assert.NotNull(grad);
                Assert.Equal(ScalarType.Float32, grad.dtype);
            });
            Assert.Contains(lora.Adapters.Layers, l => l.WeightB.grad!.abs().max().item<float>() > 0);

            // Trained adapters reach the bf16 forward as their bf16 cast, added once (the float32 hooks are silent).
            LoraTestModels.RandomizeB(lora.Adapters);
            bf16.MasterWeightsChanged();
            (Tensor ceTrained, _) = Losses(bf16, batch);
            Assert.All(lora.Adapters.Layers.Zip(working.Layers), pair =>
                Assert.True(LoraTestModels.BitEqual(pair.First.WeightB.to(ScalarType.BFloat16), pair.Second.WeightB), pair.First.Path));
            Assert.False(LoraTestModels.BitEqual(ceTrained, reference.Ce));
            lora.Adapters.Enabled = false; // the attached set's switch governs its working copy
            (Tensor ceOff, _) = Losses(bf16, batch);
            Assert.True(LoraTestModels.BitEqual(ceOff, reference.Ce));
            lora.Adapters.Enabled = true;
        }

        // Disposing the policy hands the forward back to the float32 adapters on the bf16 base.
        Assert.All(lora.Adapters.Layers, l => Assert.Null(l.WorkingCopy));
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        ModelLossOutputs after = lora.Forward(batch);
        Assert.True(after.CePerToken!.isfinite().all().item<bool>());
    }

    [Fact]
    public void ABaseAlreadyInBf16IsUsedAsItIs()
    {
        // A base cast (or loaded) in bf16 before the run never exists in float32 here: the policy takes it unchanged.
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        using BagelModel model = BagelTestModels.Model();
        model.to(ScalarType.BFloat16);
        Tensor[] before = [.. model.parameters()];
        using PackedBatch batch = LoraTestModels.MixedBatch();
        using var noise = new SeededRandomSource(3);
        using var lora = new LoraTrainableModel(new BagelTrainingModel(model, vae, () => BagelTestModels.Model(seed: 99), noise), Options);
        using var bf16 = new Bf16MixedPrecisionPolicy(lora);
        Assert.All(model.parameters().Zip(before), pair => Assert.Same(pair.Second, pair.First));
        (Tensor ce, Tensor mse) = Losses(bf16, batch);
        Assert.True(ce.isfinite().all().item<bool>() && mse.isfinite().all().item<bool>());
    }

    [Fact]
    public void AMergedExportFromABf16RunHasTheReferenceLayoutInFloat32WithTheDeltaUnrounded()
    {
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        using BagelModel model = BagelTestModels.Model();
        string[] referenceKeys = [.. model.state_dict().Keys];
        using var lora = new LoraTrainableModel(new BagelTrainingModel(model, vae, () => BagelTestModels.Model(seed: 99)), Options);
        using var bf16 = new Bf16MixedPrecisionPolicy(lora); // casts the base to bf16, as a bf16 run does
        LoraTestModels.RandomizeB(lora.Adapters);
        using var folder = new TempDirectory();
        string merged = Path.Combine(folder.Path, "model.safetensors");
        LoraAdapterFiles.SaveMerged(lora.Adapters, merged, cancellationToken: Ct);

        using (SafeTensorsReader reader = SafeTensorsReader.Open(merged))
        {
            Assert.Equal(referenceKeys.Order(StringComparer.Ordinal), reader.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
            Assert.All(reader.Tensors, t => Assert.True(t.DType == SafeTensorDType.F32, $"{t.Name} is {t.DType}"));
        }
        using BagelModel loaded = BagelTestModels.Model(seed: 98); // float32, other weights: the strict loader overwrites them
        BagelCheckpointLoader.LoadBagel(loaded, merged, cancellationToken: Ct);
        Dictionary<string, Tensor> file = loaded.state_dict(), live = model.state_dict();
        Dictionary<string, LoraLinear> adapted = lora.Adapters.Layers.ToDictionary(l => l.Path + ".weight");
        using var scope = torch.NewDisposeScope();
        foreach ((string key, Tensor value) in file)
        {
            if (key.EndsWith("pos_embed.pos_embed", StringComparison.Ordinal)) continue; // sin-cos tables: the loader rebuilds them
            Tensor expected = live[key].to(ScalarType.Float32);
            if (adapted.TryGetValue(key, out LoraLinear? layer)) expected = expected + layer.DeltaWeight();
            Assert.True(LoraTestModels.BitEqual(value, expected), key);
        }
        // The delta survives that a bf16 merge would round away in part.
        LoraLinear first = lora.Adapters.Layers[0];
        Assert.False(LoraTestModels.BitEqual(file[first.Path + ".weight"], first.MergedWeight().to(ScalarType.Float32)));
    }
}
