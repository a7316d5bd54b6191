using Bagel.Models.Generation;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Bagel.Tests.Models.Generation;

/// <summary>The sampler's pure numerics: schedule, interval, guidance edge cases, option defaults.</summary>
public sealed class FlowSamplerTests
{
    [Fact]
    public void Schedule_ShiftsLinspaceAndDropsTheFinalZero()
    {
        (float[] t, float[] dt) = FlowSampler.Schedule(3, 3.0);
        Assert.Equal([1f, 0.75f], t);
        Assert.Equal([0.25f, 0.75f], dt);
        (float[] plain, float[] plainDt) = FlowSampler.Schedule(5, 1.0);
        Assert.Equal([1f, 0.75f, 0.5f, 0.25f], plain);
        Assert.All(plainDt, d => Assert.Equal(0.25f, d));
    }

    [Fact]
    public void GuidanceInterval_IsOpenBelowClosedAbove()
    {
        Assert.True(FlowSampler.InGuidanceInterval(1f, (0.4, 1.0)));
        Assert.False(FlowSampler.InGuidanceInterval(0.4f, (0.4, 1.0)));
        Assert.True(FlowSampler.InGuidanceInterval(0.41f, (0.4, 1.0)));
    }

    [Fact]
    public void Guide_WithoutTextGuidance_ReturnsTheConditionalVelocity_EvenWithAnImageScale()
    {
        using Tensor v = randn(3, 4), other = randn(3, 4);
        using Tensor guided = FlowSampler.Guide(v, null, other, 1.0, 2.0, CfgRenormType.Global, 0.0);
        Assert.Equal(0f, (guided - v).abs().max().item<float>());
    }

    [Fact]
    public void Guide_GlobalRenorm_NeverExceedsTheConditionalNorm()
    {
        using Tensor v = randn(3, 4), text = randn(3, 4), img = randn(3, 4);
        using Tensor guided = FlowSampler.Guide(v, text, img, 4.0, 1.5, CfgRenormType.Global, 0.0);
        Assert.True(guided.norm().item<float>() <= v.norm().item<float>() * (1 + 1e-6));
        using Tensor unclamped = FlowSampler.Guide(v, text, img, 4.0, 1.5, CfgRenormType.Global, 1.0);
        using Tensor vText = text + 4.0 * (v - text);
        using Tensor expected = img + 1.5 * (vText - img);
        Assert.True(unclamped.allclose(expected, 1e-5, 1e-6));
    }

    [Fact]
    public void Guide_MissingBranch_Throws()
    {
        using Tensor v = randn(2, 2);
        Assert.Throws<ArgumentException>(() => FlowSampler.Guide(v, null, null, 2.0, 1.0, CfgRenormType.Channel, 0.0));
        Assert.Throws<ArgumentException>(() => FlowSampler.Guide(v, v, null, 2.0, 1.5, CfgRenormType.Channel, 0.0));
    }

    [Fact]
    public void Options_DefaultToTheInferencersValues()
    {
        var o = new ImageGenerationOptions();
        Assert.Equal((1024, 1024), (o.Height, o.Width));
        Assert.Equal(3.0, o.CfgTextScale);
        Assert.Equal(1.5, o.CfgImgScale);
        Assert.Equal((0.4, 1.0), o.CfgInterval);
        Assert.Equal(0.0, o.CfgRenormMin);
        Assert.Equal(CfgRenormType.Global, o.CfgRenormType);
        Assert.Equal(50, o.NumTimesteps);
        Assert.Equal(3.0, o.TimestepShift);
        Assert.Throws<ArgumentException>(() => (o with { NumTimesteps = 1 }).Validate());
    }
}
