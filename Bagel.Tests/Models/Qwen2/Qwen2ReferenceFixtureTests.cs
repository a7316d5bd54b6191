using System.Text.Json;
using Bagel.Core.StateDicts;
using Bagel.Models.Qwen2;
using TorchSharp;

namespace Bagel.Tests.Models.Qwen2;

/// <summary>Our packed backbone against the reference's own qwen2_navit.py run on the same weights and pack (f32).</summary>
public sealed class Qwen2ReferenceFixtureTests
{
    private const double OutputTolerance = 1e-5;   // relative to the largest |value|, f32 on CPU
    private const double GradientTolerance = 1e-4;

    public static TheoryData<string, Qwen2LayerModule, bool> Variants => new()
    {
        { "dense", Qwen2LayerModule.Qwen2DecoderLayer, false },
        { "moe", Qwen2LayerModule.Qwen2MoEDecoderLayer, false },
        { "mot", Qwen2LayerModule.Qwen2MoTDecoderLayer, false },
        { "mot_freeze_und", Qwen2LayerModule.Qwen2MoTDecoderLayer, true },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Forward_and_gradients_match_the_reference(string variant, Qwen2LayerModule layerModule, bool freezeUnd)
    {
        using var scope = torch.NewDisposeScope();
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Config(layerModule, freezeUnd));
        HashSet<string> ownKeys = [.. model.state_dict().Keys];
        // The weights file holds the MoT model; the dense and MoE models take the subset by name, as the script does.
        StateDictLoader.Load(model, Path.Combine(Qwen2Fixtures.Directory, "weights.safetensors"),
            new StateDictLoadOptions { KeyMap = key => ownKeys.Contains(key) ? key : null }, TestContext.Current.CancellationToken);

        Dictionary<string, torch.Tensor> inputs = Qwen2Fixtures.Read("inputs.safetensors");
        Dictionary<string, torch.Tensor> expected = Qwen2Fixtures.Read($"expected_{variant}.safetensors");
        var vision = inputs["vision_embeds"].clone().requires_grad_(true);
        var text = model.Model.EmbedTokens.forward(inputs["text_ids"]);
        long length = inputs["position_ids"].shape[0];
        var packed = torch.zeros(length, text.shape[1]).index_copy(0, inputs["text_indexes"], text)
            .index_copy(0, inputs["vision_indexes"], vision);
        bool routed = layerModule != Qwen2LayerModule.Qwen2DecoderLayer;
        var input = new Qwen2PackedInput(packed, Qwen2Fixtures.Samples(), inputs["position_ids"],
            routed ? inputs["und_indexes"] : null, routed ? inputs["gen_indexes"] : null);

        var output = model.forward(input);
        (output * inputs["probe"]).sum().backward();

        AssertClose(expected["output"], output.detach(), OutputTolerance, $"{variant} output");
        Dictionary<string, torch.Tensor> parameters = model.named_parameters().ToDictionary(p => p.name, p => (torch.Tensor)p.parameter);
        int checkedGradients = 0;
        foreach ((string name, torch.Tensor want) in expected.Where(e => e.Key.StartsWith("grad.", StringComparison.Ordinal)))
        {
            string key = name["grad.".Length..];
            torch.Tensor? grad = key == "vision_embeds" ? vision.grad : parameters[key].grad;
            AssertClose(want, grad ?? torch.zeros_like(want), GradientTolerance, $"{variant} {name}");
            checkedGradients++;
        }
        Assert.True(checkedGradients >= 5, $"only {checkedGradients} gradients in the fixture");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void State_dict_names_and_shapes_equal_the_reference(string variant, Qwen2LayerModule layerModule, bool freezeUnd)
    {
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Config(layerModule, freezeUnd));
        List<string> expected = [.. Qwen2Fixtures.Layout().GetProperty("state_dict").GetProperty(variant).EnumerateArray()
            .Select(entry => $"{entry[0].GetString()} [{string.Join(", ", entry[1].EnumerateArray().Select(d => d.GetInt64()))}]")];
        List<string> actual = [.. model.state_dict().Select(entry => $"{entry.Key} [{string.Join(", ", entry.Value.shape)}]")];
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Bagel_checkpoint_names_carry_the_language_model_prefix()
    {
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Config(Qwen2LayerModule.Qwen2MoTDecoderLayer));
        List<string> names = [.. model.state_dict().Keys.Select(Qwen2CheckpointKeys.ToBagel)];
        Assert.Contains("language_model.model.layers.1.self_attn.q_proj_moe_gen.bias", names);
        Assert.Contains("language_model.model.layers.0.self_attn.k_norm_moe_gen.weight", names);
        Assert.Contains("language_model.model.layers.0.post_attention_layernorm_moe_gen.weight", names);
        Assert.Contains("language_model.model.norm_moe_gen.weight", names);
        Assert.Contains("language_model.lm_head.weight", names);
        Assert.DoesNotContain(names, n => n.Contains("inv_freq", StringComparison.Ordinal));
    }

    private static void AssertClose(torch.Tensor expected, torch.Tensor actual, double relative, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = Math.Max(expected.abs().max().item<float>(), 1e-6f);
        double error = (expected - actual).abs().max().item<float>();
        Assert.True(error <= relative * scale, $"{what}: max |diff| {error:E3} exceeds {relative:E0} x max |expected| {scale:E3}");
    }
}
