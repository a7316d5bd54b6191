using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Siglip;

/// <summary>
/// SigLIP's LayerNorm (<c>nn.LayerNorm(hidden, eps)</c>, weight and bias), computed in fp32 and returned in fp32
/// whatever the parameter dtype: under the reference's bf16 autocast <c>layer_norm</c> is an fp32 op, so its
/// output is fp32 while the residual stream stays bf16 (model.md §10). With f32 parameters this is plain LayerNorm.
/// </summary>
public sealed class SiglipLayerNorm : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly Parameter weight;
    private readonly Parameter bias;
#pragma warning restore IDE1006
    private readonly long[] _shape;

    /// <summary>Creates the norm with weight 1 and bias 0 (PyTorch's and transformers' init).</summary>
    /// <param name="hiddenSize">The normalized (last) dimension.</param>
    /// <param name="eps">The reference's <c>layer_norm_eps</c> (1e-6).</param>
    public SiglipLayerNorm(long hiddenSize, double eps) : base(nameof(SiglipLayerNorm))
    {
        weight = new Parameter(torch.ones(hiddenSize));
        bias = new Parameter(torch.zeros(hiddenSize));
        _shape = [hiddenSize];
        Eps = eps;
        RegisterComponents();
    }

    /// <summary>The epsilon added to the variance.</summary>
    public double Eps { get; }

    /// <inheritdoc />
    public override torch.Tensor forward(torch.Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        return torch.nn.functional.layer_norm(input.to(torch.float32), _shape, weight.to(torch.float32), bias.to(torch.float32), Eps)
            .MoveToOuterDisposeScope();
    }
}
