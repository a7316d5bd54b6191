using Bagel.Models.Bagel;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;

namespace Bagel.Tests.Models.Bagel;

/// <summary>Checks the reference's init of <c>vae2llm</c> (PyTorch default) and <c>llm2vae</c> (zero).</summary>
[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class GenerationProjectionsTests
{
    [Fact]
    public void Llm2Vae_StartsAtZero()
    {
        using Linear llm2vae = GenerationProjections.CreateLlm2Vae(32, 64);
        Assert.Equal([64L, 32], llm2vae.weight!.shape);
        Assert.Equal(0.0, llm2vae.weight.abs().max().item<float>());
        Assert.Equal(0.0, llm2vae.bias!.abs().max().item<float>());
        Assert.True(llm2vae.weight.requires_grad);
    }

    [Fact]
    public void Vae2Llm_UsesPyTorchDefaultUniformInit()
    {
        torch.manual_seed(3);
        using Linear vae2llm = GenerationProjections.CreateVae2Llm(64, 256);
        double bound = 1.0 / Math.Sqrt(64);
        float weightMax = vae2llm.weight!.abs().max().item<float>();
        float biasMax = vae2llm.bias!.abs().max().item<float>();
        Assert.InRange(weightMax, 0.9 * bound, bound);
        Assert.InRange(biasMax, 0.5 * bound, bound);
    }
}
