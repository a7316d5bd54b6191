using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Models.Bagel;
using Bagel.Tests.Data.Packing;
using Bagel.Tests.Models.Siglip;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>
/// The full training forward and backward against the reference's bagel.py (Fixtures/Bagel, made by its
/// make_fixtures.py): a VLM sample and an edit sample (clean + noisy latent image) in one pack, the reference's weights
/// loaded through <see cref="BagelCheckpointLoader.LoadBagel"/>, the reference's flow noise replayed.
/// </summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class BagelReferenceFixtureTests
{
    private static readonly string Directory = Path.Combine(SharedData.RepositoryRoot, "Bagel.Tests", "Fixtures", "Bagel");

    private static Dictionary<string, Tensor> Read(string file)
    {
        using SafeTensorsReader reader = SafeTensorsReader.Open(Path.Combine(Directory, file));
        return reader.Tensors.ToDictionary(t => t.Name, t => reader.ReadTensor(t.Name));
    }

    private static List<long> Longs(Tensor t) => [.. t.data<long>().ToArray()];

    private static PackedBatch Batch(Dictionary<string, Tensor> inputs)
    {
        var builder = new PackedBatchBuilder();
        builder.AddSample(SampleLayout.FromSplits(new AttentionSplit(6, AttentionMode.Full), new AttentionSplit(6, AttentionMode.Causal)),
            SequencePackerTests.Index("vlm", 0));
        builder.AddSample(SampleLayout.FromSplits(new AttentionSplit(8, AttentionMode.Full), new AttentionSplit(4, AttentionMode.Causal),
            new AttentionSplit(6, AttentionMode.Noise)), SequencePackerTests.Index("edit", 1));
        builder.TextIds.AddRange(Longs(inputs["text_ids"]));
        builder.TextIndexes.AddRange(Longs(inputs["text_indexes"]));
        builder.PositionIds.AddRange(Longs(inputs["position_ids"]));
        builder.AddVitImage(inputs["vit_tokens"]);
        builder.VitPositionIds.AddRange(Longs(inputs["vit_positions"]));
        builder.VitTokenIndexes.AddRange(Longs(inputs["vit_indexes"]));
        using Tensor clean = zeros(3, 32, 48), noisy = zeros(3, 32, 32); // only their sizes matter: latents come with the fixture
        builder.AddVaeImage(clean);
        builder.AddVaeImage(noisy);
        builder.LatentPositionIds.AddRange(Longs(inputs["latent_positions"]));
        builder.VaeTokenIndexes.AddRange(Longs(inputs["vae_indexes"]));
        builder.Timesteps.AddRange(inputs["timesteps"].data<float>().ToArray());
        builder.MseLossIndexes.AddRange(Longs(inputs["mse_indexes"]));
        builder.LabelIds.AddRange(Longs(inputs["labels"]));
        builder.CeLossIndexes.AddRange(Longs(inputs["ce_indexes"]));
        builder.CeLossWeights.AddRange(Enumerable.Repeat(1f, builder.CeLossIndexes.Count));
        return builder.Build(limits: BagelTestModels.Config().BatchLimits);
    }

    [Fact]
    public void ForwardAndBackward_MatchTheReference()
    {
        Dictionary<string, Tensor> inputs = Read("inputs.safetensors");
        Dictionary<string, Tensor> expected = Read("expected.safetensors");
        using BagelModel model = BagelTestModels.Model();
        StateDictLoadReport report = BagelCheckpointLoader.LoadBagel(model, Path.Combine(Directory, "weights.safetensors"),
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Empty(report.UnexpectedKeys);
        using PackedBatch batch = Batch(inputs);
        Tensor padded = inputs["padded_latent"];
        IReadOnlyList<Tensor> latents = [padded[0], padded[1]];
        var replay = new ReplayRandomSource([RecordedDraw.FromTensor(expected["eps"])]);

        using BagelForwardOutput output = model.Forward(batch, latents, replay);
        replay.EnsureFullyConsumed();
        SiglipFixtures.AssertClose(expected["mse"], output.Mse!, 1e-5, "mse");
        SiglipFixtures.AssertClose(expected["ce"], output.Ce!, 1e-5, "ce");

        using BagelLosses losses = BagelLoss.Reduce(output, batch, LossNormalizers.SingleProcess(batch));
        Assert.Equal(expected["loss"].item<float>(), losses.Total.item<float>(), 4);
        losses.Total.backward();
        foreach (string name in expected.Keys.Where(k => k.StartsWith("grad.", StringComparison.Ordinal)))
        {
            string parameter = name["grad.".Length..];
            Tensor? grad = BagelTestModels.Parameter(model, parameter).grad;
            Assert.NotNull(grad);
            SiglipFixtures.AssertClose(expected[name], grad, 1e-4, name);
        }
    }
}
