using Bagel.Core.Batching;
using Bagel.Core.Randomness;
using Bagel.Models.Bagel;
using Bagel.Models.FluxVae;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Names, initial state and the packed training forward of <see cref="BagelModel"/>.</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class BagelModelTests
{
    private const int Hidden = 16;

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void StateDictNames_FollowTheReference_ForEachBranchCombination(bool visualGen, bool visualUnd)
    {
        using BagelModel model = BagelTestModels.Model(visualGen, visualUnd);
        Dictionary<string, Tensor> state = model.state_dict();
        string[] genPrefixes = ["time_embedder.", "vae2llm.", "llm2vae.", "latent_pos_embed."];
        string[] undPrefixes = ["vit_model.", "connector.", "vit_pos_embed."];
        string[] allowed = ["language_model.", .. visualGen ? genPrefixes : [], .. visualUnd ? undPrefixes : []];
        Assert.All(state.Keys, k => Assert.Contains(allowed, p => k.StartsWith(p, StringComparison.Ordinal)));
        foreach (string prefix in allowed) Assert.Contains(state.Keys, k => k.StartsWith(prefix, StringComparison.Ordinal));

        Assert.Equal([40L, Hidden], state["language_model.model.embed_tokens.weight"].shape);
        Assert.Equal([40L, Hidden], state["language_model.lm_head.weight"].shape);
        Assert.True(state.ContainsKey("language_model.model.layers.0.mlp_moe_gen.gate_proj.weight"));
        Assert.True(state.ContainsKey("language_model.model.norm_moe_gen.weight"));
        if (visualGen)
        {
            Assert.Equal([Hidden, 256L], state["time_embedder.mlp.0.weight"].shape);
            Assert.Equal([Hidden, (long)Hidden], state["time_embedder.mlp.2.weight"].shape);
            Assert.Equal([Hidden, 64L], state["vae2llm.weight"].shape);
            Assert.Equal([64L, Hidden], state["llm2vae.weight"].shape);
            Assert.Equal([64L], state["llm2vae.bias"].shape);
            Assert.Equal([16L, Hidden], state["latent_pos_embed.pos_embed"].shape);
        }
        if (visualUnd)
        {
            Assert.Equal([Hidden, 8L], state["connector.fc1.weight"].shape);
            Assert.Equal([Hidden, (long)Hidden], state["connector.fc2.weight"].shape);
            Assert.Equal([4900L, Hidden], state["vit_pos_embed.pos_embed"].shape);
            Assert.Equal([8L, 588], state["vit_model.vision_model.embeddings.patch_embedding.weight"].shape);
            Assert.Equal([4900L, 8], state["vit_model.vision_model.embeddings.position_embedding.weight"].shape);
            Assert.True(state.ContainsKey("vit_model.vision_model.post_layernorm.weight"));
        }
    }

    [Fact]
    public void NewModel_HasZeroLlm2VaeAndFixedSinCosTables()
    {
        using BagelModel model = BagelTestModels.Model();
        Assert.Equal(0f, model.Llm2Vae!.weight!.abs().max().item<float>());
        Assert.Equal(0f, model.Llm2Vae.bias!.abs().max().item<float>());
        using Tensor latentTable = SinCosPositionTable.Build(Hidden, BagelTestModels.MaxLatentSize);
        using Tensor vitTable = SinCosPositionTable.Build(Hidden, 70);
        Assert.True(model.LatentPosEmbed!.Table.allclose(latentTable.to(ScalarType.Float32)));
        Assert.True(model.VitPosEmbed!.Table.allclose(vitTable.to(ScalarType.Float32)));
        Assert.False(model.LatentPosEmbed.Table.requires_grad);
        Assert.False(model.VitPosEmbed.Table.requires_grad);
        Assert.Equal(2, model.named_parameters().Count(p => p.name.EndsWith("pos_embed", StringComparison.Ordinal) && !p.parameter.requires_grad));
        Assert.Equal(["latent_pos_embed.pos_embed", "vit_pos_embed.pos_embed"], model.PositionTableKeys);
    }

    [Fact]
    public void Config_MissingPartConfig_IsRejected()
    {
        BagelConfig config = BagelTestModels.Config() with { VitConfig = null };
        var error = Assert.Throws<BagelConfigException>(config.Validate);
        Assert.Contains("vit_config", error.Message);

        using var tower = new global::Bagel.Models.Siglip.SiglipVisionModel(BagelTestModels.Vit);
        var mismatch = Assert.Throws<BagelConfigException>(() => new BagelModel(BagelTestModels.Config(visualUnd: false), vitModel: tower));
        Assert.Contains("visual_und is false", mismatch.Message);
    }

    [Fact]
    public void Forward_OnT2IVlmAndEditPackWithVaeLatents_ReturnsFiniteLossesOfTheRightShapes()
    {
        using BagelModel model = BagelTestModels.Model();
        using PackedBatch batch = BagelTestModels.Pack(BagelTestModels.T2I(), BagelTestModels.Vlm(1), BagelTestModels.Edit(2));
        torch.manual_seed(3);
        using var vae = new FluxAutoEncoder(BagelTestModels.Vae);
        IReadOnlyList<Tensor> latents;
        using (torch.no_grad()) latents = vae.EncodePacked(batch, new SeededRandomSource(21));
        try
        {
            Assert.All(latents, l => Assert.True(l.isfinite().all().item<bool>(), "VAE latent not finite"));
            using BagelForwardOutput output = model.Forward(batch, latents, new SeededRandomSource(22));
            long noisyTokens = batch.Vae!.MseLossIndexes.shape[0];
            Assert.Equal(8, noisyTokens); // two noisy 32×32 images of 2×2 tokens
            Assert.Equal([noisyTokens, 64L], output.Mse!.shape);
            Assert.Equal([batch.TextLoss!.CeLossIndexes.shape[0]], output.Ce!.shape);
            Assert.True(output.Mse.isfinite().all().item<bool>());
            Assert.True(output.Ce.isfinite().all().item<bool>());
            Assert.True(output.Ce.min().item<float>() > 0);
            // A fresh llm2vae predicts 0, so the per-element error is the squared target (ε − x0)²: strictly positive.
            float meanMse = output.Mse.mean().item<float>();
            Assert.True(meanMse > 0.5f, $"mean MSE {meanMse}");
        }
        finally
        {
            foreach (Tensor latent in latents) latent.Dispose();
        }
    }

    [Fact]
    public void Forward_MseTargetIsReplayedEpsMinusX0_AtNoisyTokensOnly()
    {
        using BagelModel model = BagelTestModels.Model(visualUnd: false);
        // A clean conditioning image (t = 0, no target) before a noisy one: only the noisy rows enter the MSE.
        using var sample = new global::Bagel.Data.Packing.PackableSample(
            Data.Packing.SequencePackerTests.Index("edit", 0), "edit",
            [global::Bagel.Data.Packing.PlanItem.CleanVaeImage(false), global::Bagel.Data.Packing.PlanItem.NoisyVaeImage()],
            [], [torch.zeros(3, 32, 48), torch.zeros(3, 32, 32)]);
        using PackedBatch batch = BagelTestModels.Pack(sample);
        IReadOnlyList<Tensor> latents = BagelTestModels.RandomLatents(batch)!;
        using Tensor x0 = LatentPatchifier.PatchifyPacked(latents, batch.Vae!.LatentShapes);
        Assert.Equal([10L, 64], x0.shape); // 6 clean + 4 noisy tokens
        using Tensor eps = torch.randn(x0.shape, generator: new Generator(9));
        var replay = new ReplayRandomSource([RecordedDraw.FromTensor(eps)]);

        using (torch.no_grad()) model.Llm2Vae!.bias!.fill_(0.25f);
        using BagelForwardOutput output = model.Forward(batch, latents, replay);
        replay.EnsureFullyConsumed();

        using Tensor expected = eps[6..].sub(x0[6..]).neg().add(0.25f).square(); // (b − (ε − x0))² with llm2vae = b
        Assert.Equal([4L, 64], output.Mse!.shape);
        Assert.True(output.Mse.allclose(expected, rtol: 1e-6, atol: 1e-6));
        Assert.Null(output.Ce); // no CE label in this pack
        foreach (Tensor latent in latents) latent.Dispose();
    }

    [Fact]
    public void Forward_TextOnlyPack_HasNoMseAndDrawsNoNoise()
    {
        using BagelModel model = BagelTestModels.Model();
        using PackedBatch batch = BagelTestModels.Pack(BagelTestModels.TextOnly());
        Assert.Null(batch.Vae);
        Assert.Null(batch.Vit);
        var noNoise = new ReplayRandomSource([]);
        using BagelForwardOutput output = model.Forward(batch, null, noNoise);
        Assert.Null(output.Mse);
        Assert.Equal([6L], output.Ce!.shape); // 5 ids + eos
        Assert.True(output.Ce.isfinite().all().item<bool>());
    }

    [Fact]
    public void Forward_T2IOnlyPack_HasNoCe()
    {
        using BagelModel model = BagelTestModels.Model();
        using PackedBatch batch = BagelTestModels.Pack(BagelTestModels.T2I());
        Assert.Null(batch.TextLoss);
        Assert.Null(batch.Vit);
        IReadOnlyList<Tensor> latents = BagelTestModels.RandomLatents(batch)!;
        using BagelForwardOutput output = model.Forward(batch, latents, new SeededRandomSource(1));
        Assert.Null(output.Ce);
        Assert.Equal([4L, 64], output.Mse!.shape);
        using BagelLosses losses = BagelLoss.Reduce(output, batch, LossNormalizers.SingleProcess(batch));
        Assert.Equal(0f, losses.Ce.item<float>());
        Assert.True(losses.Total.item<float>() > 0);
        foreach (Tensor latent in latents) latent.Dispose();
    }

    [Fact]
    public void Forward_UnderstandingOnlyAndTextOnlyModels_RunWithoutTheMissingBranches()
    {
        using BagelModel understanding = BagelTestModels.Model(visualGen: false);
        using (PackedBatch vlm = BagelTestModels.Pack(BagelTestModels.Vlm()))
        using (BagelForwardOutput output = understanding.Forward(vlm, null, new ReplayRandomSource([])))
        {
            Assert.Null(output.Mse);
            Assert.True(output.Ce!.isfinite().all().item<bool>());
        }

        using BagelModel textOnly = BagelTestModels.Model(visualGen: false, visualUnd: false, layerModule: global::Bagel.Models.Qwen2.Qwen2LayerModule.Qwen2DecoderLayer);
        using PackedBatch text = BagelTestModels.Pack(BagelTestModels.TextOnly());
        using BagelForwardOutput textOutput = textOnly.Forward(text, null, new ReplayRandomSource([]));
        Assert.Equal([6L], textOutput.Ce!.shape);
    }

    [Fact]
    public void Forward_BranchTheModelLacksOrMissingLatents_FailsWithOurException()
    {
        using BagelModel noGen = BagelTestModels.Model(visualGen: false);
        using PackedBatch t2i = BagelTestModels.Pack(BagelTestModels.T2I());
        IReadOnlyList<Tensor> latents = BagelTestModels.RandomLatents(t2i)!;
        var error = Assert.Throws<BagelInputException>(() => noGen.Forward(t2i, latents, new SeededRandomSource(1)));
        Assert.Contains("visual_gen", error.Message);

        using BagelModel noUnd = BagelTestModels.Model(visualUnd: false);
        using PackedBatch vlm = BagelTestModels.Pack(BagelTestModels.Vlm());
        Assert.Contains("visual_und", Assert.Throws<BagelInputException>(() => noUnd.Forward(vlm, null, new SeededRandomSource(1))).Message);

        using BagelModel full = BagelTestModels.Model();
        Assert.Contains("EncodePacked", Assert.Throws<BagelInputException>(() => full.Forward(t2i, null, new SeededRandomSource(1))).Message);
        foreach (Tensor latent in latents) latent.Dispose();
    }
}
