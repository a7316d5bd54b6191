using Bagel.Core.Randomness;
using Bagel.Tests.Data.Example;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using Bagel.Training.Loss;
using Bagel.Training.Validation;
using TorchSharp;

namespace Bagel.Tests.Training.Validation;

[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // seeds and draws from torch's global generator
public sealed class ValidationEvaluatorTests(ExampleDatasetFixture data) : IClassFixture<ExampleDatasetFixture>
{
    private const long Seed = 7;

    [Fact]
    public async Task GroupLossesAreTheMeansOverAllTheGroupsTokens()
    {
        using var model = new TinyPackedModel(seed: 5);
        using ValidationSet set = await ValidationTestData.CreateAsync(data, batchesPerGroup: 3);

        IReadOnlyList<GroupValidationLoss> results = ValidationEvaluator.Evaluate(model, set, new LossWeights(), Seed, TestContext.Current.CancellationToken);

        Assert.Equal(set.Groups.Select(g => g.Name), results.Select(r => r.Group));
        foreach (var (group, result) in set.Groups.Zip(results))
        {
            var (mse, ce, mseTokens, ceTokens) = HandComputed(model, group, noiseSeed: null);
            Assert.Equal(mseTokens, result.MseTokens);
            Assert.Equal(ceTokens, result.CeTokens);
            Assert.Equal(mse, result.Mse, 1e-5);
            Assert.Equal(ce, result.Ce, 1e-5);
            Assert.Equal(3, result.Batches);
        }
        Assert.True(results[0].HasMse && !results[0].HasCe, "t2i_pretrain has only the flow-matching loss");
        Assert.True(results[2].HasCe && !results[2].HasMse, "vlm_sft has only the text loss");
        Assert.All(results.Where(r => r.HasMse), r => Assert.True(r.Mse > 0));
    }

    [Fact]
    public async Task TheNoiseOfAGroupComesFromItsFixedSeed()
    {
        using var inner = new TinyPackedModel(seed: 5);
        var model = new NoisyTinyModel(inner);
        using ValidationSet set = await ValidationTestData.CreateAsync(data, batchesPerGroup: 2);

        IReadOnlyList<GroupValidationLoss> results = ValidationEvaluator.Evaluate(model, set, new LossWeights(), Seed, TestContext.Current.CancellationToken);
        IReadOnlyList<GroupValidationLoss> otherSeed = ValidationEvaluator.Evaluate(model, set, new LossWeights(), Seed + 1, TestContext.Current.CancellationToken);

        foreach (var (group, result) in set.Groups.Zip(results))
        {
            var (mse, ce, _, _) = HandComputed(model, group, ValidationEvaluator.GroupSeed(Seed, group.Name));
            Assert.Equal(mse, result.Mse, 1e-5);
            Assert.Equal(ce, result.Ce, 1e-5);
        }
        Assert.NotEqual(results[0].Mse, otherSeed[0].Mse);
        Assert.NotEqual(ValidationEvaluator.GroupSeed(Seed, "t2i_pretrain"), ValidationEvaluator.GroupSeed(Seed, "vlm_sft"));
    }

    [Fact]
    public async Task TwoEvaluationsOfTheSameWeightsAgreeAndLeaveTheGeneratorAndTheModesAsTheyWere()
    {
        using var inner = new TinyPackedModel(seed: 6);
        var model = new NoisyTinyModel(inner);
        using ValidationSet set = await ValidationTestData.CreateAsync(data, batchesPerGroup: 2);
        inner.Module.train();
        inner.Network.mix.eval(); // a submodule deliberately in eval mode stays so
        TorchGlobalRandom.Seed(123);
        byte[] before = TorchGlobalRandom.GetState();

        IReadOnlyList<GroupValidationLoss> first = ValidationEvaluator.Evaluate(model, set, new LossWeights(), Seed, TestContext.Current.CancellationToken);
        Assert.Equal(before, TorchGlobalRandom.GetState());
        torch.rand(17).Dispose(); // the generator moves on between evaluations, as training does
        IReadOnlyList<GroupValidationLoss> second = ValidationEvaluator.Evaluate(model, set, new LossWeights(), Seed, TestContext.Current.CancellationToken);

        Assert.Equal(first, second);
        Assert.Equal(2 * set.BatchCount, model.Calls.Count);
        Assert.All(model.Calls, c => Assert.False(c.Training || c.GradEnabled, "forward ran in training mode or with gradients"));
        Assert.True(inner.Module.training);
        Assert.True(inner.Network.lm_head.training);
        Assert.False(inner.Network.mix.training);
    }

    /// <summary>Concatenates every per-token loss of the group and takes plain means (no per-batch reduction).</summary>
    private static (double Mse, double Ce, long MseTokens, long CeTokens) HandComputed(ITrainableModel model, ValidationGroup group, long? noiseSeed)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        model.Module.eval();
        if (noiseSeed is { } seed) torch.manual_seed(seed).Dispose();
        var ce = new List<torch.Tensor>();
        var mse = new List<torch.Tensor>();
        foreach (var batch in group.Batches)
        {
            ModelLossOutputs outputs = model.Forward(batch);
            if (outputs.CePerToken is { } c) ce.Add(c);
            if (outputs.MseSquaredError is { } m) mse.Add(m.mean([-1]));
        }
        model.Module.train();
        torch.Tensor allCe = ce.Count > 0 ? torch.cat(ce) : torch.zeros(0), allMse = mse.Count > 0 ? torch.cat(mse) : torch.zeros(0);
        return (allMse.shape[0] > 0 ? allMse.mean().item<float>() : 0, allCe.shape[0] > 0 ? allCe.mean().item<float>() : 0, allMse.shape[0], allCe.shape[0]);
    }
}
