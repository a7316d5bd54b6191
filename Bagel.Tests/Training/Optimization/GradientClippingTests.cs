using Bagel.Core.Native;
using Bagel.Training.Optimization;
using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Tests.Training.Optimization;

public sealed class GradientClippingTests
{
    public GradientClippingTests() => TorchRuntime.EnsureLoaded();

    private static Parameter WithGrad(params float[] grad)
    {
        var parameter = new Parameter(torch.zeros(grad.Length));
        torch.Tensor loss = (parameter * torch.tensor(grad)).sum();
        loss.backward();
        return parameter;
    }

    [Fact]
    public void ReturnsThePreClipGlobalNormAndScalesGradientsToTheMaximum()
    {
        Parameter first = WithGrad(3f, 0f), second = WithGrad(4f); // global norm 5
        var untouched = new Parameter(torch.zeros(2));              // no gradient: ignored

        double norm = GradientClipping.ClipGradNorm([first, second, untouched], maxNorm: 1.0);

        Assert.Equal(5.0, norm, 5);
        Assert.Equal(0.6f, first.grad!.data<float>()[0], 4);
        Assert.Equal(0.8f, second.grad!.data<float>()[0], 4);
    }

    [Fact]
    public void GradientsUnderTheMaximumAreLeftAlone()
    {
        Parameter parameter = WithGrad(0.3f, 0.4f);

        double norm = GradientClipping.ClipGradNorm([parameter], maxNorm: 1.0);

        Assert.Equal(0.5, norm, 5);
        Assert.Equal(0.3f, parameter.grad!.data<float>()[0], 6);
    }
}
