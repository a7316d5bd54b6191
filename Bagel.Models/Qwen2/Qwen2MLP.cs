using TorchSharp;
using TorchSharp.Modules;

namespace Bagel.Models.Qwen2;

/// <summary>The SwiGLU MLP: <c>down_proj(silu(gate_proj(y)) * up_proj(y))</c>, no biases.</summary>
public sealed class Qwen2MLP : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006 // checkpoint key names
    private readonly Linear gate_proj;
    private readonly Linear up_proj;
    private readonly Linear down_proj;
#pragma warning restore IDE1006

    /// <summary>Creates the MLP for <paramref name="config"/>'s hidden and intermediate sizes.</summary>
    /// <param name="config">The backbone config.</param>
    public Qwen2MLP(Qwen2Config config) : base(nameof(Qwen2MLP))
    {
        ArgumentNullException.ThrowIfNull(config);
        gate_proj = torch.nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        up_proj = torch.nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        down_proj = torch.nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override torch.Tensor forward(torch.Tensor hidden_state)
    {
        using var scope = torch.NewDisposeScope();
        var activated = torch.nn.functional.silu(gate_proj.call(hidden_state)) * up_proj.call(hidden_state);
        return down_proj.call(activated).MoveToOuterDisposeScope();
    }
}
