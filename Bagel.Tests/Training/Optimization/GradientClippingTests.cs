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

    [Fact]
    public void ComputeTotalNormMeasuresWithoutClipping_AndEqualsWhatTheClipReturns()
    {
        Parameter first = WithGrad(3f, 0f), second = WithGrad(4f);
        var untouched = new Parameter(torch.zeros(2));

        Assert.Equal(5.0, GradientClipping.ComputeTotalNorm([first, second, untouched]), 5);
        Assert.Equal(4.0, GradientClipping.ComputeTotalNorm([first, second], double.PositiveInfinity), 6);
        Assert.Equal(7.0, GradientClipping.ComputeTotalNorm([first, second], normType: 1), 5);
        Assert.Equal(3f, first.grad!.data<float>()[0]); // untouched by measuring
        Assert.Equal(0.0, GradientClipping.ComputeTotalNorm([untouched]));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ComputeTotalNorm([first], normType: 0));

        double measured = GradientClipping.ComputeTotalNorm([first, second]);
        Assert.Equal(measured, GradientClipping.ClipGradNorm([first, second], maxNorm: 1.0));
    }

    [Fact]
    public void ClipGradNormScalesExactlyAsLibtorchDoes()
    {
        // Same gradients through torch's own clip_grad_norm_ and through ours: equal bits, norm and gradients.
        float[] a = [0.7f, -1.3f, 2.9f], b = [5.5f, 0.01f];
        Parameter ourA = WithGrad(a), ourB = WithGrad(b), torchA = WithGrad(a), torchB = WithGrad(b);

        double ours = GradientClipping.ClipGradNorm([ourA, ourB], maxNorm: 0.75);
        double theirs = torch.nn.utils.clip_grad_norm_([torchA, torchB], 0.75);

        Assert.Equal(theirs, ours);
        Assert.Equal(torchA.grad!.data<float>().ToArray(), ourA.grad!.data<float>().ToArray());
        Assert.Equal(torchB.grad!.data<float>().ToArray(), ourB.grad!.data<float>().ToArray());
    }

    /// <summary>
    /// Large CPU gradients have their per-gradient norms computed on several threads (largest first); the total norm and
    /// the clipped gradients are still bit for bit what one thread computes with libtorch's per-gradient norms, for the
    /// 2-norm, the max norm and other p, and the calling thread's torch thread count is left as it was.
    /// </summary>
    [Fact]
    public void NormsSharedOutOverThreadsEqualOneThreadsBitForBit()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new torch.Generator(91);
        long[] sizes = [70_001, 3_000_001, 7, 1_500_000];
        Parameter[] ours = [.. sizes.Select(n => new Parameter(torch.zeros(n)))], theirs = [.. sizes.Select(n => new Parameter(torch.zeros(n)))];
        for (int i = 0; i < sizes.Length; i++)
        {
            torch.Tensor grad = torch.randn(sizes[i], generator: generator).mul_(1e-3);
            ours[i].grad = grad.clone();
            theirs[i].grad = grad.clone();
        }
        int before = torch.get_num_threads();
        torch.set_num_threads(2);
        try
        {
            foreach (double p in new[] { 2.0, double.PositiveInfinity, 1.0, 3.0 })
            {
                long shared = GradientClipping.SharedOutNorms;
                double actual = GradientClipping.ComputeTotalNorm(ours, p);
                Assert.True(GradientClipping.SharedOutNorms > shared, $"p = {p}: the norms were not shared out over threads");
                torch.Tensor[] norms = [.. theirs.Select(q => double.IsPositiveInfinity(p) ? q.grad!.abs().max() : q.grad!.norm((float)p))];
                torch.Tensor expected = double.IsPositiveInfinity(p) ? torch.stack(norms).max() : torch.stack(norms).norm((float)p);
                Assert.Equal(expected.to(torch.float64).item<double>(), actual);
                Assert.Equal(2, torch.get_num_threads());
            }
            double ourNorm = GradientClipping.ClipGradNorm(ours, maxNorm: 0.5);
            double torchNorm = torch.nn.utils.clip_grad_norm_(theirs, 0.5);
            Assert.Equal(torchNorm, ourNorm);
            for (int i = 0; i < sizes.Length; i++)
                Assert.True(ours[i].grad!.bytes.SequenceEqual(theirs[i].grad!.bytes), $"gradient {i} ({sizes[i]} elements) clipped differently");
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }
}
