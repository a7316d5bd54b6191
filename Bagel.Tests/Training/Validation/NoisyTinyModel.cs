using Bagel.Core.Batching;
using Bagel.Tests.Training.Loop;
using Bagel.Training.Loop;
using TorchSharp;

namespace Bagel.Tests.Training.Validation;

/// <summary>
/// <see cref="TinyPackedModel"/> whose losses are scaled by noise drawn from torch's global generator, as the BAGEL
/// composite draws its posterior and flow-matching noise: a validation that consumed or reseeded that generator
/// without restoring it would change the training that follows. It also records, per forward call, whether the module
/// was in training mode and whether gradients were on.
/// </summary>
internal sealed class NoisyTinyModel(TinyPackedModel inner) : ITrainableModel
{
    public List<(bool Training, bool GradEnabled)> Calls { get; } = [];

    public torch.nn.Module Module => inner.Module;

    public torch.nn.Module CreateTwin() => inner.CreateTwin();

    public ModelLossOutputs Forward(PackedBatch batch)
    {
        Calls.Add((inner.Module.training, torch.is_grad_enabled()));
        ModelLossOutputs outputs = inner.Forward(batch);
        return outputs with
        {
            CePerToken = outputs.CePerToken is { } ce ? ce * (1 + 0.5 * torch.rand_like(ce)) : null,
            MseSquaredError = outputs.MseSquaredError is { } mse ? mse * (1 + 0.5 * torch.rand_like(mse)) : null,
        };
    }
}
