using Bagel.Core.Batching;
using Bagel.Models.Qwen2;
using TorchSharp;

namespace Bagel.Tests.Models.Qwen2;

public sealed class Qwen2ModelTests
{
    private static readonly IReadOnlyList<SampleLayout> Pack =
        [SampleLayout.FromSplits(new(3, AttentionMode.Causal), new(4, AttentionMode.Noise)), SampleLayout.FromSplits(new AttentionSplit(3, AttentionMode.Full))];

    private static Qwen2PackedInput Input(torch.Tensor sequence, bool routed) => new(
        sequence, Pack, torch.tensor(new long[] { 0, 1, 2, 3, 3, 3, 3, 0, 0, 0 }),
        routed ? torch.tensor(new long[] { 0, 1, 2, 3, 6, 7, 8, 9 }) : null,
        routed ? torch.tensor(new long[] { 4, 5 }) : null);

    [Fact]
    public void Initial_weights_follow_the_transformers_rules()
    {
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny() with { IntermediateSize = 256 }, new torch.Generator(4));
        Dictionary<string, torch.Tensor> state = model.state_dict();
        double std = state["model.layers.0.mlp.gate_proj.weight"].std().item<float>();
        Assert.InRange(std, 0.018, 0.022);
        Assert.True(state["model.layers.0.self_attn.q_proj.bias"].Equals(torch.zeros(16)));
        Assert.True(state["model.layers.0.input_layernorm_moe_gen.weight"].Equals(torch.ones(16)));
        Assert.InRange(state["lm_head.weight"].std().item<float>(), 0.015, 0.025);
    }

    [Fact]
    public void Copy_init_makes_every_gen_expert_equal_to_its_und_twin()
    {
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny(), new torch.Generator(8));
        int copied = Qwen2Initialization.CopyUnderstandingToGeneration(model);
        Dictionary<string, torch.Tensor> state = model.state_dict();
        List<string> gen = [.. state.Keys.Where(k => k.Contains("_moe_gen", StringComparison.Ordinal))];
        Assert.Equal(gen.Count, copied);
        Assert.Equal(2 * (7 + 2 + 2 + 3) + 1, copied); // per layer: q/k/v weight+bias and o weight, 2 qk norms, 2 layer norms, 3 MLP weights; plus norm_moe_gen
        Assert.All(gen, k => Assert.True(state[k].Equals(state[k.Replace("_moe_gen", "", StringComparison.Ordinal)]), k));
    }

    [Fact]
    public void Copy_init_of_a_mot_model_gives_the_dense_model_output()
    {
        // With gen experts equal to und experts, routing cannot change anything: MoT == dense on the same weights.
        using var scope = torch.NewDisposeScope();
        using var mot = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny(), new torch.Generator(8));
        Qwen2Initialization.CopyUnderstandingToGeneration(mot);
        using var dense = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny(Qwen2LayerModule.Qwen2DecoderLayer));
        Dictionary<string, torch.Tensor> motState = mot.state_dict();
        using (torch.no_grad())
            foreach (var (name, parameter) in dense.named_parameters()) parameter.copy_(motState[name]);
        var sequence = torch.randn([10, 16], generator: new torch.Generator(1));
        var fromMot = mot.forward(Input(sequence, routed: true));
        var fromDense = dense.forward(Input(sequence, routed: false));
        Assert.True(fromMot.allclose(fromDense, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void A_bf16_model_keeps_bf16_throughout_and_stays_near_the_f32_result()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny(), new torch.Generator(8));
        var sequence = torch.randn([10, 16], generator: new torch.Generator(2));
        var full = model.forward(Input(sequence, routed: true));
        model.to(torch.bfloat16);
        var half = model.forward(Input(sequence.to(torch.bfloat16), routed: true));
        Assert.Equal(torch.bfloat16, half.dtype);
        Assert.Equal(torch.bfloat16, model.Model.RotaryEmbedding.InvFreqDType); // the FSDP buffer-cast quirk follows Module.to
        double error = (half.to(torch.float32) - full).abs().max().item<float>();
        Assert.True(error < 0.05 * full.abs().max().item<float>(), $"bf16 differs from f32 by {error}");
    }

    [Fact]
    public void A_mot_model_without_und_indexes_says_what_to_pass()
    {
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny());
        using var sequence = torch.zeros(10, 16);
        var error = Assert.Throws<Qwen2InputException>(() => model.forward(Input(sequence, routed: false)));
        Assert.Contains("PackedUndTokenIndexes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lengths_that_disagree_are_reported_together()
    {
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny(Qwen2LayerModule.Qwen2DecoderLayer));
        using var sequence = torch.zeros(9, 16);
        var error = Assert.Throws<Qwen2InputException>(() => model.forward(Input(sequence, routed: false)));
        Assert.Contains("[9, 16]", error.Message, StringComparison.Ordinal);
        Assert.Contains("sum to 10", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Freeze_und_with_the_dense_layer_detaches_the_whole_input_as_the_reference_does()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny(Qwen2LayerModule.Qwen2DecoderLayer) with { FreezeUnd = true });
        var sequence = torch.randn(10, 16).requires_grad_(true);
        var output = model.forward(Input(sequence, routed: false));
        output.sum().backward();
        Assert.Null(sequence.grad);
        Assert.NotNull(model.Model.Layers[0].named_parameters().First().parameter.grad);
    }

    [Fact]
    public void Logits_come_from_the_untied_head()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new Qwen2ForCausalLM(Qwen2Fixtures.Tiny());
        var hidden = torch.randn(3, 16);
        var logits = model.ComputeLogits(hidden);
        Assert.Equal([3L, 40L], logits.shape);
        Assert.True(logits.allclose(hidden.matmul(model.LmHead.weight!.t())));
    }
}
