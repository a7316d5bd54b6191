using Bagel.Core.Batching;
using Bagel.Models.Qwen2;
using Bagel.Tests.Models.Qwen2;
using TorchSharp;

namespace Bagel.Tests.Models.Memory;

[Collection(nameof(global::Bagel.Tests.Core.Randomness.TorchGlobalRandomTests))] // draws from or seeds torch's global generator
public sealed class ActivationCheckpointTests
{
    private static readonly IReadOnlyList<SampleLayout> Pack =
    [
        SampleLayout.FromSplits(new(3, AttentionMode.Causal), new(4, AttentionMode.Noise), new(2, AttentionMode.Causal)),
        SampleLayout.FromSplits(new(3, AttentionMode.Full), new(3, AttentionMode.Causal)),
    ];

    private static (Dictionary<string, float[]> Grads, float[] InputGrad, float Loss) Run(bool checkpointing, bool freezeUnd)
    {
        torch.manual_seed(11);
        using var model = new Qwen2Model(Qwen2Fixtures.Tiny(Qwen2LayerModule.Qwen2MoTDecoderLayer) with { FreezeUnd = freezeUnd });
        model.GradientCheckpointing = checkpointing;
        model.train();
        using var scope = torch.NewDisposeScope();
        var sequence = torch.randn(15, model.Config.HiddenSize).requires_grad_(true);
        var positions = torch.tensor(new long[] { 0, 1, 2, 3, 3, 3, 3, 4, 5, 0, 0, 0, 1, 2, 3 });
        var und = torch.tensor(new long[] { 0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14 });
        var gen = torch.tensor(new long[] { 4, 5 });
        var output = model.forward(new Qwen2PackedInput(sequence, Pack, positions, und, gen));
        var loss = output.square().mean() + output.sum() * 0.01f;
        loss.backward();
        var grads = model.named_parameters().Where(p => p.parameter.grad is not null)
                         .ToDictionary(p => p.name, p => p.parameter.grad!.data<float>().ToArray());
        return (grads, sequence.grad?.data<float>().ToArray() ?? [], loss.item<float>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GradientsAreTheSameWithCheckpointingOnAndOff(bool freezeUnd)
    {
        var plain = Run(checkpointing: false, freezeUnd);
        var checkpointed = Run(checkpointing: true, freezeUnd);

        Assert.Equal(plain.Loss, checkpointed.Loss);
        Assert.Equal(plain.Grads.Keys.Order(), checkpointed.Grads.Keys.Order());
        Assert.NotEmpty(plain.Grads);
        foreach (var (name, grad) in plain.Grads)
        {
            float[] other = checkpointed.Grads[name];
            for (int i = 0; i < grad.Length; i++)
                Assert.True(Math.Abs(grad[i] - other[i]) <= 1e-6f * (1 + Math.Abs(grad[i])), $"{name}[{i}]: {grad[i]} vs {other[i]}");
        }
        Assert.Equal(plain.InputGrad.Length, checkpointed.InputGrad.Length);
        for (int i = 0; i < plain.InputGrad.Length; i++)
            Assert.True(Math.Abs(plain.InputGrad[i] - checkpointed.InputGrad[i]) <= 1e-6f * (1 + Math.Abs(plain.InputGrad[i])), $"input[{i}]");
    }

    [Fact]
    public void EvaluationWithoutGradientsDoesNotCheckpoint()
    {
        torch.manual_seed(3);
        using var model = new Qwen2Model(Qwen2Fixtures.Tiny(Qwen2LayerModule.Qwen2DecoderLayer)) { GradientCheckpointing = true };
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var output = model.forward(new Qwen2PackedInput(torch.randn(15, model.Config.HiddenSize), Pack, torch.arange(15L)));
        Assert.False(output.requires_grad);
    }
}
