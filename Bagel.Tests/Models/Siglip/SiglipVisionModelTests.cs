using Bagel.Models.Siglip;
using TorchSharp;

namespace Bagel.Tests.Models.Siglip;

public sealed class SiglipVisionModelTests
{
    private static SiglipVisionConfig Tiny => new()
    {
        HiddenSize = 8, IntermediateSize = 12, NumHiddenLayers = 2, NumAttentionHeads = 2, ImageSize = 42, PatchSize = 14, Rope = false,
    };

    [Fact]
    public void Images_in_one_pack_do_not_see_each_other()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new SiglipVisionModel(Tiny);
        var generator = new torch.Generator(5);
        var tokens = torch.randn([7, 588], generator: generator);
        var positions = torch.tensor(new long[] { 0, 1, 3, 4, 0, 1, 2 });
        var seqlens = torch.tensor(new long[] { 4, 3 });

        var output = model.Forward(tokens, positions, seqlens);
        var changed = tokens.clone();
        changed[5] = torch.randn([588], generator: generator);
        var again = model.Forward(changed, positions, seqlens);
        var alone = model.Forward(tokens.narrow(0, 0, 4), positions.narrow(0, 0, 4), torch.tensor(new long[] { 4 }));

        Assert.Equal([7L, 8L], output.shape);
        Assert.True(output.narrow(0, 0, 4).allclose(again.narrow(0, 0, 4)), "image 0 changed when image 1 did");
        Assert.False(output.narrow(0, 4, 3).allclose(again.narrow(0, 4, 3)), "image 1 ignored its own patch");
        Assert.True(output.narrow(0, 0, 4).allclose(alone, rtol: 1e-5, atol: 1e-6), "image 0 differs when packed alone");
    }

    [Fact]
    public void Bad_inputs_raise_our_exception_naming_the_field()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new SiglipVisionModel(Tiny);
        var tokens = torch.zeros(3, 588);
        var positions = torch.tensor(new long[] { 0, 1, 2 });

        var badPosition = Assert.Throws<SiglipInputException>(() => model.Forward(tokens, torch.tensor(new long[] { 0, 1, 9 }), torch.tensor(new long[] { 3 })));
        var badLengths = Assert.Throws<SiglipInputException>(() => model.Forward(tokens, positions, torch.tensor(new long[] { 2, 2 })));
        var badWidth = Assert.Throws<SiglipInputException>(() => model.Forward(torch.zeros(3, 14), positions, torch.tensor(new long[] { 3 })));

        Assert.Contains("packed_vit_position_ids", badPosition.Message, StringComparison.Ordinal);
        Assert.Contains("vit_token_seqlens", badLengths.Message, StringComparison.Ordinal);
        Assert.Contains("packed_vit_tokens", badWidth.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rounding_q_k_v_to_bf16_is_an_option_that_changes_f32_results_only_slightly()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(9);
        using var rounded = new SiglipVisionModel(Tiny);
        using var exact = new SiglipVisionModel(Tiny with { RoundAttentionInputsToBFloat16 = false });
        exact.load_state_dict(rounded.state_dict());
        var tokens = torch.randn(4, 588);
        var positions = torch.tensor(new long[] { 0, 1, 3, 4 });
        var seqlens = torch.tensor(new long[] { 4 });

        var a = rounded.Forward(tokens, positions, seqlens);
        var b = exact.Forward(tokens, positions, seqlens);

        Assert.False(a.allclose(b, rtol: 0, atol: 0));
        Assert.True(a.allclose(b, rtol: 0.05, atol: 0.05));
    }

    [Fact]
    public void A_bf16_tower_keeps_the_residual_in_bf16_and_returns_fp32_layer_norm_output()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(4);
        using var full = new SiglipVisionModel(Tiny);
        using var half = new SiglipVisionModel(Tiny);
        half.load_state_dict(full.state_dict());
        half.to(torch.bfloat16);
        var tokens = torch.randn(7, 588);
        var positions = torch.tensor(new long[] { 0, 1, 3, 4, 0, 1, 2 });
        var seqlens = torch.tensor(new long[] { 4, 3 });

        var reference = full.Forward(tokens, positions, seqlens);
        var output = half.Forward(tokens, positions, seqlens);

        Assert.Equal(torch.float32, output.dtype); // post_layernorm is an fp32 op under the reference's autocast
        SiglipFixtures.AssertClose(reference, output, 0.05, "bf16 tower vs f32 tower");
    }
}
