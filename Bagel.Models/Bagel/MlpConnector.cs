using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// The reference's <c>MLPconnector</c> (ViT → LLM space): <c>fc2(gelu_tanh(fc1(x)))</c>, fc1 in → out and fc2
/// out → out, both with bias and PyTorch default init. The activation is BAGEL's <c>connector_act</c>
/// "gelu_pytorch_tanh", i.e. GELU with the tanh approximation.
/// </summary>
public sealed class MlpConnector : nn.Module<Tensor, Tensor>
{
    private readonly Linear _fc1;
    private readonly Linear _fc2;

    /// <summary>Creates the connector.</summary>
    /// <param name="inDim">Input features (SigLIP hidden size, 1152).</param>
    /// <param name="outDim">Output features (LLM hidden size H).</param>
    public MlpConnector(long inDim, long outDim) : base(nameof(MlpConnector))
    {
        _fc1 = nn.Linear(inDim, outDim, hasBias: true);
        _fc2 = nn.Linear(outDim, outDim, hasBias: true);
        register_module("fc1", _fc1);
        register_module("fc2", _fc2);
    }

    /// <summary>Components are registered explicitly under the reference's names; this stops TorchSharp from
    /// also registering the private fields under their C# names.</summary>
    protected override void RegisterComponents() { }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        // Autocast casts the ViT's float32 post-LayerNorm output to the weights' dtype (bf16 in training).
        using Tensor input = x.to(_fc1.weight!.dtype);
        using Tensor hidden = _fc1.call(input);
        using Tensor activated = nn.functional.gelu(hidden, GELU.Approximate.tanh);
        return _fc2.call(activated);
    }
}
