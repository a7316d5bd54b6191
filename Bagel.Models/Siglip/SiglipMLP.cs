using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Siglip;

/// <summary>SigLIP's MLP: <c>fc2(gelu_tanh(fc1(x)))</c>, both Linear layers with bias.</summary>
public sealed class SiglipMLP : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly Linear fc1;
    private readonly Linear fc2;
#pragma warning restore IDE1006

    /// <summary>Creates the MLP for <paramref name="config"/>'s hidden and intermediate sizes.</summary>
    /// <param name="config">The tower config.</param>
    public SiglipMLP(SiglipVisionConfig config) : base(nameof(SiglipMLP))
    {
        ArgumentNullException.ThrowIfNull(config);
        fc1 = torch.nn.Linear(config.HiddenSize, config.IntermediateSize);
        fc2 = torch.nn.Linear(config.IntermediateSize, config.HiddenSize);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override torch.Tensor forward(torch.Tensor hidden_states)
    {
        using var scope = torch.NewDisposeScope();
        var states = fc1.call(hidden_states.to(fc1.weight!.dtype));
        states = torch.nn.functional.gelu(states, TorchSharp.Modules.GELU.Approximate.tanh); // gelu_pytorch_tanh
        return fc2.call(states).MoveToOuterDisposeScope();
    }
}
