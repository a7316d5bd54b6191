using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Qwen2;

/// <summary>
/// RMSNorm as the reference computes it (model.md §2.4): <c>w ⊙ cast_to_input_dtype(xf · rsqrt(mean(xf²) + eps))</c>
/// with xf = x in fp32; the cast back happens before the weight multiply, so in bf16 training the product is bf16.
/// </summary>
public sealed class Qwen2RMSNorm : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key name
    private readonly Parameter weight;
#pragma warning restore IDE1006

    /// <summary>Creates the norm with weight 1.</summary>
    /// <param name="hiddenSize">The normalized (last) dimension.</param>
    /// <param name="eps">The reference's <c>variance_epsilon</c> (rms_norm_eps).</param>
    public Qwen2RMSNorm(long hiddenSize, double eps) : base(nameof(Qwen2RMSNorm))
    {
        weight = new Parameter(torch.ones(hiddenSize));
        VarianceEpsilon = eps;
        RegisterComponents();
    }

    /// <summary>The epsilon added to the mean square.</summary>
    public double VarianceEpsilon { get; }

    /// <summary>The weight [hidden].</summary>
    public Parameter Weight => weight;

    /// <inheritdoc />
    public override torch.Tensor forward(torch.Tensor hidden_states)
    {
        using var scope = torch.NewDisposeScope();
        var input_dtype = hidden_states.dtype;
        // The float32 island (model.md §2.4); the seam lets a test measure it.
        var states = Common.PrecisionIslands.t_noRmsNormVariance ? hidden_states : hidden_states.to(torch.float32);
        var variance = states.pow(2).mean([-1], keepdim: true);
        states = states * torch.rsqrt(variance + VarianceEpsilon);
        return (weight * states.to(input_dtype)).MoveToOuterDisposeScope();
    }
}
