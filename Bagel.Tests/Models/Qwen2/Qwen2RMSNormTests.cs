using Bagel.Models.Qwen2;
using TorchSharp;

namespace Bagel.Tests.Models.Qwen2;

public sealed class Qwen2RMSNormTests
{
    [Fact]
    public void Float32_output_is_weight_times_x_over_root_mean_square()
    {
        using var scope = torch.NewDisposeScope();
        using var norm = new Qwen2RMSNorm(4, 1e-6);
        using (torch.no_grad()) norm.Weight.copy_(torch.tensor(new[] { 1f, 2f, 0.5f, -1f }));
        var x = torch.tensor(new[] { 1f, -2f, 3f, 4f }).unsqueeze(0);
        var y = norm.forward(x);
        double rms = Math.Sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
        float[] expected = [(float)(1 / rms), (float)(2 * -2 / rms), (float)(0.5 * 3 / rms), (float)(-4 / rms)];
        Assert.Equal(expected, y.data<float>().ToArray(), new FloatTolerance(1e-6f));
    }

    [Fact]
    public void Bfloat16_input_is_cast_back_before_the_weight_multiply()
    {
        using var scope = torch.NewDisposeScope();
        using var norm = new Qwen2RMSNorm(64, 1e-6);
        var generator = new torch.Generator(5);
        norm.to(torch.bfloat16);
        using (torch.no_grad()) norm.Weight.copy_(torch.randn(64, generator: generator).to(torch.bfloat16) + 1);
        var x = torch.randn([8, 64], generator: generator).to(torch.bfloat16);

        var y = norm.forward(x);

        var xf = x.to(torch.float32);
        var normalized = (xf * torch.rsqrt(xf.pow(2).mean([-1], keepdim: true) + 1e-6)).to(torch.bfloat16);
        var castFirst = norm.Weight * normalized; // the reference's order: cast to bf16, then multiply in bf16
        var multiplyInFloat32 = (norm.Weight.to(torch.float32) * (xf * torch.rsqrt(xf.pow(2).mean([-1], keepdim: true) + 1e-6))).to(torch.bfloat16);
        Assert.Equal(torch.bfloat16, y.dtype);
        Assert.True(y.Equals(castFirst));
        Assert.False(y.Equals(multiplyInFloat32), "the product must be taken in bf16 after the cast, not in fp32");
    }

    private sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;
        public int GetHashCode(float obj) => 0;
    }
}
