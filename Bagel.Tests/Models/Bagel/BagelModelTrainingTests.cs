using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Tests.Models.Qwen2;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Gradients, freezing and a tiny overfit run of <see cref="BagelModel"/>.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class BagelModelTrainingTests
{
    private static readonly string[] GenPath =
    [
        "vae2llm.weight", "llm2vae.weight", "time_embedder.mlp.0.weight", "time_embedder.mlp.2.bias",
        "language_model.model.layers.0.mlp_moe_gen.up_proj.weight", "language_model.model.norm_moe_gen.weight",
    ];

    private static readonly string[] UndPath =
    [
        "language_model.model.embed_tokens.weight", "language_model.lm_head.weight", "language_model.model.layers.1.mlp.down_proj.weight",
        "connector.fc1.weight", "vit_model.vision_model.embeddings.patch_embedding.weight", "vit_model.vision_model.post_layernorm.weight",
    ];

    private static (BagelModel Model, PackedBatch Batch, IReadOnlyList<Tensor> Latents) Setup()
    {
        BagelModel model = BagelTestModels.Model();
        // A trained llm2vae is not zero; with the zero init no MSE gradient would reach past it.
        using (torch.no_grad()) model.Llm2Vae!.weight!.normal_(0, 0.1, new Generator(4));
        PackedBatch batch = BagelTestModels.Pack(BagelTestModels.T2I(), BagelTestModels.Vlm(1), BagelTestModels.Edit(2));
        return (model, batch, BagelTestModels.RandomLatents(batch)!);
    }

    private static void Backward(BagelModel model, PackedBatch batch, IReadOnlyList<Tensor> latents)
    {
        using BagelForwardOutput output = model.Forward(batch, latents, new SeededRandomSource(3));
        using BagelLosses losses = BagelLoss.Reduce(output, batch, LossNormalizers.SingleProcess(batch));
        losses.Total.backward();
    }

    private static bool HasGradient(BagelModel model, string name) =>
        BagelTestModels.Parameter(model, name).grad is { } grad && grad.abs().max().item<float>() > 0;

    [Fact]
    public void Backward_ReachesEveryBranch()
    {
        var (model, batch, latents) = Setup();
        using (model)
        using (batch)
        {
            Backward(model, batch, latents);
            Assert.All(GenPath.Concat(UndPath), name => Assert.True(HasGradient(model, name), $"no gradient at {name}"));
            Assert.Null(model.LatentPosEmbed!.Table.grad);
            Assert.Null(model.VitPosEmbed!.Table.grad);
        }
        foreach (Tensor latent in latents) latent.Dispose();
    }

    [Fact]
    public void FreezeLlmAndVit_StopTheirGradientsButNotTheGlueModules()
    {
        var (model, batch, latents) = Setup();
        using (model)
        using (batch)
        {
            model.FreezeLanguageModel();
            model.FreezeVit();
            Assert.DoesNotContain(model.LanguageModel.parameters(), p => p.requires_grad);
            Assert.DoesNotContain(model.VitModel!.parameters(), p => p.requires_grad);
            Backward(model, batch, latents);
            Assert.All(model.LanguageModel.parameters(), p => Assert.Null(p.grad));
            Assert.All(model.VitModel.parameters(), p => Assert.Null(p.grad));
            foreach (string name in new[] { "vae2llm.weight", "llm2vae.weight", "time_embedder.mlp.0.weight", "connector.fc1.weight", "connector.fc2.bias" })
                Assert.True(HasGradient(model, name), $"no gradient at {name}");
        }
        foreach (Tensor latent in latents) latent.Dispose();
    }

    [Fact]
    public void FreezeUnd_LeavesUndExpertsWithoutGradientWhileGenExpertsLearn()
    {
        torch.manual_seed(7);
        BagelConfig config = BagelTestModels.Config(visualUnd: false) with { LlmConfig = Qwen2Fixtures.Tiny() with { FreezeUnd = true } };
        using var model = new BagelModel(config);
        using (torch.no_grad()) model.Llm2Vae!.weight!.normal_(0, 0.1, new Generator(4));
        using PackedBatch batch = BagelTestModels.Pack(BagelTestModels.T2I(), BagelTestModels.TextOnly(1));
        IReadOnlyList<Tensor> latents = BagelTestModels.RandomLatents(batch)!;
        Backward(model, batch, latents);
        Assert.True(HasGradient(model, "language_model.model.layers.0.mlp_moe_gen.up_proj.weight"));
        Assert.True(HasGradient(model, "vae2llm.weight"));
        Assert.False(HasGradient(model, "language_model.model.layers.0.mlp.up_proj.weight"));
        Assert.False(HasGradient(model, "language_model.model.embed_tokens.weight"));
        Assert.False(HasGradient(model, "language_model.model.norm.weight"));
        // lm_head is applied after the final detach, so the CE still trains it (model.md §2.3).
        Assert.True(HasGradient(model, "language_model.lm_head.weight"));
        foreach (Tensor latent in latents) latent.Dispose();
    }

    [Fact]
    public void AFewAdamWStepsOnOneBatch_ReduceBothLosses()
    {
        var (model, batch, latents) = Setup();
        using (model)
        using (batch)
        {
            using var optimizer = optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: 1e-2);
            float firstCe = 0, firstMse = 0, lastCe = 0, lastMse = 0;
            for (int step = 0; step < 12; step++)
            {
                optimizer.zero_grad();
                // The same ε every step, so the objective is fixed and must go down.
                using BagelForwardOutput output = model.Forward(batch, latents, new SeededRandomSource(3));
                using BagelLosses losses = BagelLoss.Reduce(output, batch, LossNormalizers.SingleProcess(batch));
                losses.Total.backward();
                optimizer.step();
                (lastCe, lastMse) = (losses.Ce.item<float>(), losses.Mse.item<float>());
                if (step == 0) (firstCe, firstMse) = (lastCe, lastMse);
            }
            Assert.True(lastCe < 0.7f * firstCe, $"CE {firstCe} -> {lastCe}");
            Assert.True(lastMse < 0.9f * firstMse, $"MSE {firstMse} -> {lastMse}");
        }
        foreach (Tensor latent in latents) latent.Dispose();
    }

    [Fact]
    public void GradientCheckpointingOfTheLanguageModel_GivesTheSameGradients()
    {
        // The backward pass recomputes the layers, so the forward output (which keeps their inputs) must outlive it.
        var (model, batch, latents) = Setup();
        using (model)
        using (batch)
        {
            Backward(model, batch, latents);
            Dictionary<string, Tensor> plain = model.named_parameters().Where(p => p.parameter.grad is not null)
                .ToDictionary(p => p.name, p => p.parameter.grad!.clone());
            model.zero_grad();
            model.LanguageModel.Model.GradientCheckpointing = true;
            Backward(model, batch, latents);
            foreach ((string name, Tensor expected) in plain)
                Assert.True(expected.allclose(BagelTestModels.Parameter(model, name).grad!, rtol: 1e-5, atol: 1e-7), $"{name} differs with checkpointing");
        }
        foreach (Tensor latent in latents) latent.Dispose();
    }
}
