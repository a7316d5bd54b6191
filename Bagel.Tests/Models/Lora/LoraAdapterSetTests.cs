using Bagel.Core.Batching;
using Bagel.Models.Bagel;
using Bagel.Models.Lora;
using Bagel.Tests.Models.Bagel;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Lora;

/// <summary>The adapter math (PEFT's forward, init, scaling, merge), target selection and exactness at step 0.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds torch's global generator
public sealed class LoraAdapterSetTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnAdaptedLinearIsBasePlusScaledLowRankProduct(bool rsLora)
    {
        torch.manual_seed(1);
        using var model = torch.nn.Sequential(("proj", torch.nn.Linear(24, 40)));
        var options = new LoraOptions { Rank = 4, Alpha = 12, TargetModules = ["proj"], UseRsLora = rsLora, InitSeed = 3 };
        using LoraAdapterSet adapters = LoraAdapterSet.Attach(model, options);
        LoraTestModels.RandomizeB(adapters);
        LoraLinear layer = Assert.Single(adapters.Layers);
        Assert.Equal(rsLora ? 12 / Math.Sqrt(4) : 12 / 4.0, layer.Scaling);

        using var scope = torch.NewDisposeScope();
        Tensor x = torch.randn(7, 24);
        Linear linear = layer.BaseLayer!;
        Tensor actual = model.call(x);
        // Computed independently in float64: W·x + b + s·B·(A·x).
        Tensor x64 = x.to(ScalarType.Float64);
        Tensor expected = x64.matmul(linear.weight!.to(ScalarType.Float64).t()) + linear.bias!.to(ScalarType.Float64)
            + x64.matmul(layer.WeightA.to(ScalarType.Float64).t()).matmul(layer.WeightB.to(ScalarType.Float64).t()) * layer.Scaling;
        Assert.True(LoraTestModels.RelativeError(actual.to(ScalarType.Float64), expected) < 1e-6);
        // And the delta is really there (not just the base).
        Assert.True(LoraTestModels.RelativeError(linear.forward(x).to(ScalarType.Float64), expected) > 1e-3);
    }

    [Fact]
    public void APeftInitialisationDrawsAWithinKaimingBoundsAndZeroB()
    {
        using BagelModel model = BagelTestModels.Model();
        var options = new LoraOptions { Rank = 4, TargetModules = [LoraTargets.LanguageModel], InitSeed = 5 };
        using LoraAdapterSet first = LoraAdapterSet.Attach(model, options);
        foreach (LoraLinear layer in first.Layers)
        {
            double bound = 1 / Math.Sqrt(layer.InFeatures); // kaiming_uniform_(a=sqrt(5)) on [r, in]
            Assert.Equal([4L, layer.InFeatures], layer.WeightA.shape);
            Assert.Equal([layer.OutFeatures, 4L], layer.WeightB.shape);
            Assert.True(layer.WeightA.abs().max().item<float>() <= bound);
            Assert.True(layer.WeightA.std().item<float>() > bound / 4);
            Assert.Equal(0, layer.WeightB.abs().max().item<float>());
        }
        Assert.All(model.parameters(), p => Assert.False(p.requires_grad));
        Assert.All(first.parameters(), p => Assert.True(p.requires_grad));
        Dictionary<string, Tensor> a = first.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        first.Dispose();
        using LoraAdapterSet second = LoraAdapterSet.Attach(model, options); // same seed, same A
        foreach ((string key, Tensor value) in second.state_dict()) Assert.True(LoraTestModels.BitEqual(value, a[key]), key);
    }

    [Fact]
    public void TargetsFollowPeftsRulesWithSeparateChoicesPerExpert()
    {
        using BagelModel model = BagelTestModels.Model();
        int layers = model.Config.LlmConfig.NumHiddenLayers;
        string[] Paths(params string[] targets)
        {
            using LoraAdapterSet set = LoraAdapterSet.Attach(model, new LoraOptions { TargetModules = targets }, freezeBase: false);
            return [.. set.TargetPaths];
        }

        Assert.Equal(14 * layers, Paths(LoraTargets.LanguageModel).Length);
        string[] und = Paths(LoraTargets.UnderstandingExpert), gen = Paths(LoraTargets.GenerationExpert);
        Assert.Equal(7 * layers, und.Length);
        Assert.Equal(7 * layers, gen.Length);
        Assert.All(gen, p => Assert.Contains("_moe_gen", p, StringComparison.Ordinal));
        Assert.All(und, p => Assert.DoesNotContain("_moe_gen", p, StringComparison.Ordinal));
        // PEFT's list rule: a name matches as a dot-separated suffix, so q_proj also picks the ViT's q_proj but never q_proj_moe_gen.
        string[] q = Paths("q_proj");
        Assert.Contains("language_model.model.layers.0.self_attn.q_proj", q);
        Assert.Contains(q, p => p.StartsWith("vit_model.", StringComparison.Ordinal));
        Assert.DoesNotContain(q, p => p.EndsWith("_moe_gen", StringComparison.Ordinal));
        Assert.Equal(["connector.fc1", "llm2vae", "vae2llm"], Paths("vae2llm", "llm2vae", "connector.fc1").Order(StringComparer.Ordinal));
        Assert.DoesNotContain("language_model.lm_head", Paths(LoraTargets.AllLinear));
        Assert.Contains("time_embedder.mlp.0", Paths(LoraTargets.AllLinear));

        var notLinear = Assert.Throws<LoraException>(() => LoraAdapterSet.Attach(model, new LoraOptions { TargetModules = ["mlp_moe_gen"] }));
        Assert.Contains("language_model.model.layers.0.mlp_moe_gen (Qwen2MLP)", notLinear.Message, StringComparison.Ordinal);
        Assert.Contains("match no Linear", Assert.Throws<LoraException>(() => LoraAdapterSet.Attach(model, new LoraOptions { TargetModules = ["nothing_here"] })).Message, StringComparison.Ordinal);
        var bad = Assert.Throws<LoraException>(() => LoraAdapterSet.Attach(model, new LoraOptions { Rank = 0, Dropout = 1, TargetModules = ["regex:("] }));
        Assert.Contains("lora_rank: 0", bad.Message, StringComparison.Ordinal);
        Assert.Contains("lora_dropout: 1", bad.Message, StringComparison.Ordinal);
        Assert.Contains("not a valid regular expression", bad.Message, StringComparison.Ordinal);
        using (LoraAdapterSet.Attach(model, new LoraOptions { TargetModules = ["vae2llm"] }, freezeBase: false))
            Assert.Contains("already carries", Assert.Throws<LoraException>(() => LoraAdapterSet.Attach(model, new LoraOptions { TargetModules = ["vae2llm"] })).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RankAndAlphaPatternsSetPerModuleValuesAsPeftDoes()
    {
        using BagelModel model = BagelTestModels.Model();
        var options = new LoraOptions
        {
            Rank = 4, Alpha = 8, TargetModules = [LoraTargets.LanguageModel],
            RankPattern = [new(@"mlp_moe_gen\.\w+_proj", 2)], AlphaPattern = [new(@"q_proj_moe_gen", 1.5)],
        };
        using LoraAdapterSet set = LoraAdapterSet.Attach(model, options);
        LoraLinear Layer(string path) => set.Layers.Single(l => l.Path == path);
        Assert.Equal(2, Layer("language_model.model.layers.0.mlp_moe_gen.up_proj").Rank);
        Assert.Equal(4, Layer("language_model.model.layers.0.mlp.up_proj").Rank);
        Assert.Equal(1.5 / 4, Layer("language_model.model.layers.1.self_attn.q_proj_moe_gen").Scaling);
        Assert.Equal(8 / 4.0, Layer("language_model.model.layers.1.self_attn.q_proj").Scaling);
    }

    [Fact]
    public void AtStepZeroTheAdaptedModelsLossesEqualTheBaseModelsExactly()
    {
        using BagelModel model = BagelTestModels.Model();
        using PackedBatch batch = LoraTestModels.MixedBatch();
        (Tensor baseMse, Tensor baseCe) = LoraTestModels.Losses(model, batch);
        using LoraAdapterSet adapters = LoraAdapterSet.Attach(model, new LoraOptions { Rank = 4, TargetModules = [LoraTargets.AllLinear] });
        (Tensor mse, Tensor ce) = LoraTestModels.Losses(model, batch);
        Assert.True(LoraTestModels.BitEqual(mse, baseMse));
        Assert.True(LoraTestModels.BitEqual(ce, baseCe));
        // The adapters are wired in: a non-zero B changes both losses.
        LoraTestModels.RandomizeB(adapters);
        (Tensor mse2, Tensor ce2) = LoraTestModels.Losses(model, batch);
        Assert.False(LoraTestModels.BitEqual(mse2, baseMse));
        Assert.False(LoraTestModels.BitEqual(ce2, baseCe));
    }

    [Fact]
    public void MergedOutputsEqualUnmergedAndUnmergeRestoresEveryBaseTensorBitForBit()
    {
        using BagelModel model = BagelTestModels.Model();
        using PackedBatch batch = LoraTestModels.MixedBatch();
        Dictionary<string, Tensor> before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        using LoraAdapterSet adapters = LoraAdapterSet.Attach(model, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = [LoraTargets.AllLinear] });
        LoraTestModels.RandomizeB(adapters);
        (Tensor mse, Tensor ce) = LoraTestModels.Losses(model, batch);

        adapters.Merge();
        Assert.True(adapters.IsMerged);
        Assert.Contains(model.state_dict(), kv => !LoraTestModels.BitEqual(kv.Value, before[kv.Key])); // the weights really changed
        (Tensor mergedMse, Tensor mergedCe) = LoraTestModels.Losses(model, batch);
        Assert.True(LoraTestModels.RelativeError(mergedMse, mse) < 1e-5, $"mse {LoraTestModels.RelativeError(mergedMse, mse)}");
        Assert.True(LoraTestModels.RelativeError(mergedCe, ce) < 1e-5, $"ce {LoraTestModels.RelativeError(mergedCe, ce)}");

        adapters.Unmerge();
        Assert.False(adapters.IsMerged);
        foreach ((string key, Tensor value) in model.state_dict()) Assert.True(LoraTestModels.BitEqual(value, before[key]), key);
        (Tensor againMse, Tensor againCe) = LoraTestModels.Losses(model, batch);
        Assert.True(LoraTestModels.BitEqual(againMse, mse));
        Assert.True(LoraTestModels.BitEqual(againCe, ce));

        adapters.Dispose(); // detaches: the base model's own outputs again
        (Tensor baseMse, _) = LoraTestModels.Losses(model, batch);
        Assert.False(LoraTestModels.BitEqual(baseMse, mse));
    }

    [Fact]
    public void TrainAndEvalReachTheBaseAndTheAdaptersAndDropoutOnlyActsInTraining()
    {
        torch.manual_seed(2);
        using var model = torch.nn.Sequential(("proj", torch.nn.Linear(8, 8)));
        using LoraAdapterSet adapters = LoraAdapterSet.Attach(model, new LoraOptions { Rank = 2, Dropout = 0.5, TargetModules = ["proj"] });
        LoraTestModels.RandomizeB(adapters, std: 1);
        using Tensor x = torch.randn(4, 8);
        adapters.eval();
        Assert.False(model.training);
        using Tensor a = model.call(x), b = model.call(x);
        Assert.True(LoraTestModels.BitEqual(a, b));
        adapters.train();
        Assert.True(model.training);
        Assert.True(adapters.Layers[0].training);
        using Tensor c = model.call(x);
        Assert.False(LoraTestModels.BitEqual(c, a));
    }
}
