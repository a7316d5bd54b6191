using Bagel.Core.StateDicts;
using Bagel.Models.Bagel;
using Bagel.Models.Qwen2;
using Bagel.Tests.Models.Qwen2;
using Bagel.Tests.Models.Siglip;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Construction from parts and full-checkpoint loading of <see cref="BagelModel"/> (model.md §8).</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class BagelCheckpointLoaderTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("bagel-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static bool Same(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using Tensor equal = a.eq(b).all();
        return equal.item<bool>();
    }

    [Fact]
    public void LoadBagel_RoundTripsEveryTensorAndRecomputesThePositionTables()
    {
        string path = Path.Combine(_folder, "ema.safetensors");
        using BagelModel saved = BagelTestModels.Model(seed: 1);
        Dictionary<string, Tensor> expected = saved.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using (torch.no_grad()) saved.LatentPosEmbed!.Table.fill_(5f); // must not survive the load
        StateDictSaver.SaveFile(saved, path, cancellationToken: TestContext.Current.CancellationToken);
        using BagelModel model = BagelTestModels.Model(seed: 2);
        StateDictLoadReport report = BagelCheckpointLoader.LoadBagel(model, path, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(["latent_pos_embed.pos_embed", "vit_pos_embed.pos_embed"], report.IgnoredKeys.Order(StringComparer.Ordinal));
        foreach ((string key, Tensor value) in model.state_dict())
            Assert.True(Same(value, expected[key]), $"{key} differs after the load");
    }

    [Fact]
    public void LoadBagel_FileOfAnotherShape_ReportsMissingAndMisshapenTogetherAndLoadsNothing()
    {
        string path = Path.Combine(_folder, "model.safetensors");
        BagelConfig other = BagelTestModels.Config(visualUnd: false) with { LlmConfig = Qwen2Fixtures.Tiny() with { VocabSize = 41 } };
        using (var saved = new BagelModel(other)) StateDictSaver.SaveFile(saved, path, cancellationToken: TestContext.Current.CancellationToken);
        using BagelModel model = BagelTestModels.Model();
        using Tensor before = model.LanguageModel.Model.EmbedTokens.weight!.clone();
        var error = Assert.Throws<BagelCheckpointException>(() => BagelCheckpointLoader.LoadBagel(model, path, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("missing tensor(s) [connector.fc1.bias", error.Message);
        Assert.Contains("language_model.model.embed_tokens.weight: file [41, 16], model [40, 16]", error.Message);
        Assert.Contains("model.safetensors", error.Message);
        Assert.True(Same(model.LanguageModel.Model.EmbedTokens.weight!, before)); // nothing loaded
    }

    [Fact]
    public void LoadParts_FillsLlmAndVitFromHuggingFaceFilesAndKeepsTheGlueModulesNew()
    {
        // A Hugging Face-style Qwen2 file: dense layers, so no *_moe_gen tensors.
        string llmPath = Path.Combine(_folder, "qwen2.safetensors");
        torch.manual_seed(11);
        using (var hf = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny(Qwen2LayerModule.Qwen2DecoderLayer)))
            StateDictSaver.SaveFile(hf, llmPath, cancellationToken: TestContext.Current.CancellationToken);
        using var file = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny(Qwen2LayerModule.Qwen2DecoderLayer));
        StateDictLoader.Load(file, llmPath, cancellationToken: TestContext.Current.CancellationToken);

        BagelConfig config = BagelTestModels.Config() with { VitConfig = SiglipFixtures.Config() };
        torch.manual_seed(12);
        using var model = new BagelModel(config);
        IReadOnlyList<StateDictLoadReport> reports = BagelCheckpointLoader.LoadParts(
            model, llmPath, Path.Combine(SiglipFixtures.Directory, "hf_model.safetensors"), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(2, reports.Count);

        Tensor Get(string name) => BagelTestModels.Parameter(model, name);
        Tensor FromFile(string name) => BagelTestModels.Parameter(file, name);
        Assert.True(Same(Get("language_model.model.embed_tokens.weight"), FromFile("model.embed_tokens.weight")));
        Assert.True(Same(Get("language_model.model.layers.1.mlp.up_proj.weight"), FromFile("model.layers.1.mlp.up_proj.weight")));
        // copy_init_moe: the gen experts start as copies of the und experts.
        Assert.True(Same(Get("language_model.model.layers.1.mlp_moe_gen.up_proj.weight"), FromFile("model.layers.1.mlp.up_proj.weight")));
        Assert.True(Same(Get("language_model.model.norm_moe_gen.weight"), Get("language_model.model.norm.weight")));
        // SigLIP: the fixture's conv-shaped patch weight arrives in Linear form.
        Assert.Equal([16L, 588], Get("vit_model.vision_model.embeddings.patch_embedding.weight").shape);
        Assert.Equal(0f, model.Llm2Vae!.weight!.abs().max().item<float>());
        Assert.Contains("vision_model.embeddings.patch_embedding.weight", reports[1].LoadedKeys); // tower-relative names
    }
}
