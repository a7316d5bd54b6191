using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// The two linear maps between patchified latents and the LLM (reference <c>Bagel.__init__</c> / <c>_init_weights</c>):
/// <c>vae2llm</c> Linear(p·p·z → H) with the PyTorch default init (weight and bias U(±1/sqrt(fan_in))), and
/// <c>llm2vae</c> Linear(H → p·p·z) with weight and bias set to zero, so the first velocity prediction is 0.
/// </summary>
public static class GenerationProjections
{
    /// <summary>Creates <c>vae2llm</c>.</summary>
    /// <param name="patchLatentDim">p·p·z (64 for FLUX with 2×2 patches).</param>
    /// <param name="hiddenSize">H.</param>
    /// <returns>The layer (default init).</returns>
    public static Linear CreateVae2Llm(long patchLatentDim, long hiddenSize) =>
        nn.Linear(patchLatentDim, hiddenSize, hasBias: true);

    /// <summary>Creates <c>llm2vae</c>, zero-initialized as the reference does.</summary>
    /// <param name="hiddenSize">H.</param>
    /// <param name="patchLatentDim">p·p·z.</param>
    /// <returns>The layer (weight and bias zero).</returns>
    public static Linear CreateLlm2Vae(long hiddenSize, long patchLatentDim)
    {
        Linear layer = nn.Linear(hiddenSize, patchLatentDim, hasBias: true);
        using var noGrad = no_grad();
        layer.weight!.zero_();
        layer.bias!.zero_();
        return layer;
    }
}
