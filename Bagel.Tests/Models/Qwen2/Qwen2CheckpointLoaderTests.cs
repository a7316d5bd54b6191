using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Models.Qwen2;
using Bagel.Tests.Infrastructure;
using TorchSharp;

namespace Bagel.Tests.Models.Qwen2;

public sealed class Qwen2CheckpointLoaderTests
{
    /// <summary>Writes what a tied Hugging Face Qwen2 file holds: a dense model without QK norms, no lm_head.</summary>
    private static string WriteTiedHuggingFaceFile(string folder, out Dictionary<string, torch.Tensor> written)
    {
        Qwen2Config source = Qwen2Fixtures.Tiny(Qwen2LayerModule.Qwen2DecoderLayer, qkNorm: false) with { TieWordEmbeddings = true };
        using var hf = new Qwen2ForCausalLM(source, new torch.Generator(17));
        using (torch.no_grad())
            foreach (var (name, parameter) in hf.named_parameters())
                if (name.EndsWith("norm.weight", StringComparison.Ordinal)) parameter.uniform_(0.5, 1.5);
        string path = Path.Combine(folder, "model.safetensors");
        StateDictSaver.SaveFile(hf, path, new StateDictSaveOptions { KeyMap = key => key == "lm_head.weight" ? null : key },
            TestContext.Current.CancellationToken);
        written = hf.state_dict().Where(e => e.Key != "lm_head.weight").ToDictionary(e => e.Key, e => e.Value.detach().clone());
        return path;
    }

    [Fact]
    public void Hugging_face_names_load_and_gen_experts_are_copied_from_their_und_twins()
    {
        using var temp = new TempDirectory();
        string path = WriteTiedHuggingFaceFile(temp.Path, out var written);
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny().WithBagelOverrides(), new torch.Generator(99));
        var headBefore = model.LmHead.weight!.detach().clone();

        StateDictLoadReport report = Qwen2CheckpointLoader.LoadHuggingFace(model, path,
            cancellationToken: TestContext.Current.CancellationToken);

        Dictionary<string, torch.Tensor> state = model.state_dict();
        foreach ((string key, torch.Tensor value) in written)
            Assert.True(state[key].Equals(value), $"'{key}' was not loaded");
        foreach (string key in state.Keys.Where(k => k.Contains("_moe_gen", StringComparison.Ordinal)))
            Assert.True(state[key].Equals(state[key.Replace("_moe_gen", "", StringComparison.Ordinal)]), $"'{key}' is not a copy of its und twin");
        // Qwen2.5 has no QK norms: they stay at 1 (and so do their gen copies).
        Assert.True(state["model.layers.1.self_attn.q_norm.weight"].Equals(torch.ones(4)));
        Assert.True(state["model.layers.1.self_attn.k_norm_moe_gen.weight"].Equals(torch.ones(4)));
        // Tied file: the untied lm_head stays random (model.md §8.1), not a copy of the embedding.
        Assert.True(model.LmHead.weight!.Equals(headBefore));
        Assert.False(model.LmHead.weight!.Equals(written["model.embed_tokens.weight"]));
        Assert.Contains("lm_head.weight", report.MissingKeys);
        Assert.DoesNotContain(report.MissingKeys, k => !Qwen2CheckpointLoader.MayBeAbsent(k));
    }

    [Fact]
    public void Without_copy_init_the_gen_experts_keep_their_random_init()
    {
        using var temp = new TempDirectory();
        string path = WriteTiedHuggingFaceFile(temp.Path, out _);
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny().WithBagelOverrides(), new torch.Generator(5));
        Qwen2CheckpointLoader.LoadHuggingFace(model, path, copyInitMoe: false, cancellationToken: TestContext.Current.CancellationToken);
        Dictionary<string, torch.Tensor> state = model.state_dict();
        Assert.False(state["model.layers.0.self_attn.q_proj_moe_gen.weight"].Equals(state["model.layers.0.self_attn.q_proj.weight"]));
        Assert.True(state["model.layers.0.self_attn.q_proj_moe_gen.bias"].Equals(torch.zeros(16)));
    }

    [Fact]
    public void A_file_for_another_shape_of_model_fails_before_anything_is_loaded()
    {
        using var temp = new TempDirectory();
        string path = WriteTiedHuggingFaceFile(temp.Path, out _);
        using var deeper = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny().WithBagelOverrides() with { NumHiddenLayers = 3 });
        var before = deeper.Model.EmbedTokens.weight!.detach().clone();
        var error = Assert.Throws<Qwen2CheckpointException>(() => Qwen2CheckpointLoader.LoadHuggingFace(deeper, path,
            cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("model.layers.2.mlp.down_proj.weight", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.True(deeper.Model.EmbedTokens.weight!.Equals(before));
    }

    [Fact]
    public void A_bagel_checkpoint_round_trips_through_the_language_model_prefix()
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "ema.safetensors");
        using var saved = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny(), new torch.Generator(1));
        StateDictSaver.SaveFile(saved, path, new StateDictSaveOptions { KeyMap = Qwen2CheckpointKeys.ToBagel },
            TestContext.Current.CancellationToken);
        using (SafeTensorsReader reader = SafeTensorsReader.Open(path))
            Assert.All(reader.Tensors, t => Assert.StartsWith("language_model.", t.Name, StringComparison.Ordinal));

        using var loaded = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny(), new torch.Generator(2));
        StateDictLoader.Load(loaded, path, new StateDictLoadOptions { KeyMap = Qwen2CheckpointKeys.FromBagel },
            TestContext.Current.CancellationToken);
        Dictionary<string, torch.Tensor> left = saved.state_dict(), right = loaded.state_dict();
        Assert.All(left, e => Assert.True(e.Value.Equals(right[e.Key]), e.Key));
    }

    [Theory]
    [InlineData("language_model.model.norm.weight", "model.norm.weight")]
    [InlineData("language_model.lm_head.weight", "lm_head.weight")]
    [InlineData("vit_model.vision_model.post_layernorm.weight", null)]
    [InlineData("time_embedder.mlp.0.weight", null)]
    public void Bagel_keys_map_to_module_keys_or_are_ignored(string key, string? expected) =>
        Assert.Equal(expected, Qwen2CheckpointKeys.FromBagel(key));

    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight")]
    [InlineData("lm_head.weight", "lm_head.weight")]
    [InlineData("model.layers.0.self_attn.rotary_emb.inv_freq", null)]
    public void Hugging_face_keys_keep_their_names_and_rope_buffers_are_ignored(string key, string? expected) =>
        Assert.Equal(expected, Qwen2CheckpointKeys.FromHuggingFace(key));
}
