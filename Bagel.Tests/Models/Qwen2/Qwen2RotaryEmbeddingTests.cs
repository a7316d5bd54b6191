using Bagel.Models.Qwen2;
using TorchSharp;

namespace Bagel.Tests.Models.Qwen2;

public sealed class Qwen2RotaryEmbeddingTests
{
    [Fact]
    public void Inverse_frequencies_and_tables_follow_the_default_rope_formula()
    {
        using var scope = torch.NewDisposeScope();
        using var rope = new Qwen2RotaryEmbedding(8, 1_000_000);
        float[] invFreq = rope.InvFreq().data<float>().ToArray();
        Assert.Equal(4, invFreq.Length);
        for (int i = 0; i < 4; i++)
            Assert.Equal(1.0 / Math.Pow(1_000_000, 2.0 * i / 8), invFreq[i], 1e-7);

        var (cos, sin) = rope.forward(torch.tensor(new long[] { 0, 3, 7 }), torch.float32);
        Assert.Equal([3L, 8L], cos.shape);
        for (int row = 0; row < 3; row++)
        {
            long position = new long[] { 0, 3, 7 }[row];
            for (int j = 0; j < 8; j++)
            {
                double angle = position * (double)invFreq[j % 4]; // concat(freqs, freqs)
                Assert.Equal(Math.Cos(angle), cos[row, j].item<float>(), 1e-6);
                Assert.Equal(Math.Sin(angle), sin[row, j].item<float>(), 1e-6);
            }
        }
        Assert.Empty(rope.state_dict()); // inv_freq is not saved
    }

    [Fact]
    public void Casting_the_module_to_bf16_rounds_the_inverse_frequencies_as_the_fsdp_buffer_cast_does()
    {
        using var scope = torch.NewDisposeScope();
        using var rope = new Qwen2RotaryEmbedding(16, 1_000_000);
        var exact = rope.InvFreq();
        rope.to(torch.bfloat16);
        Assert.Equal(torch.bfloat16, rope.InvFreqDType);
        Assert.True(rope.InvFreq().Equals(exact.to(torch.bfloat16)));
        var (cos, _) = rope.forward(torch.tensor(new long[] { 1000 }), torch.bfloat16);
        var expected = (exact.to(torch.bfloat16).to(torch.float32) * 1000).cos().to(torch.bfloat16);
        Assert.True(cos.narrow(1, 0, 8).squeeze(0).Equals(expected));
    }

    [Fact]
    public void Rotate_half_negates_the_second_half_and_swaps_halves()
    {
        using var x = torch.tensor(new float[] { 1, 2, 3, 4 });
        using var rotated = Qwen2RotaryEmbedding.RotateHalf(x);
        Assert.Equal([-3f, -4f, 1f, 2f], rotated.data<float>().ToArray());
    }

    [Fact]
    public void Rotation_keeps_norms_and_makes_scores_depend_on_relative_position_only()
    {
        using var scope = torch.NewDisposeScope();
        using var rope = new Qwen2RotaryEmbedding(8, 10_000);
        var generator = new torch.Generator(3);
        var q = torch.randn([1, 1, 8], torch.float64, generator: generator);
        var k = torch.randn([1, 1, 8], torch.float64, generator: generator);
        double Score(long qPos, long kPos)
        {
            var (cq, sq) = rope.forward(torch.tensor(new[] { qPos }), torch.float64);
            var (ck, sk) = rope.forward(torch.tensor(new[] { kPos }), torch.float64);
            var (rq, _) = Qwen2RotaryEmbedding.ApplyRotaryPosEmb(q, q, cq, sq);
            var (_, rk) = Qwen2RotaryEmbedding.ApplyRotaryPosEmb(k, k, ck, sk);
            Assert.Equal(q.norm().item<double>(), rq.norm().item<double>(), 1e-6);
            return (rq * rk).sum().item<double>();
        }
        Assert.Equal(Score(5, 2), Score(13, 10), 1e-5);
        Assert.NotEqual(Score(5, 2), Score(5, 4), 3);
    }
}
