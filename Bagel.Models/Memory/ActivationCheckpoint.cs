using Bagel.Core.Randomness;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Bagel.Models.Memory;

/// <summary>
/// Activation checkpointing for one block (TorchSharp has none built in): the forward runs without building a graph
/// and keeps only the block's input; the backward recomputes the block with the same random state, then back-propagates
/// through the recomputation, which accumulates the parameters' gradients and yields the input's. This is the
/// "reentrant" scheme: memory for activations drops from every layer's intermediates to one input per layer, at the cost
/// of a second forward. The reference enables it for every decoder layer (training.md 5.8).
/// </summary>
public static class ActivationCheckpoint
{
    /// <summary>
    /// Runs <paramref name="block"/> on <paramref name="input"/> with checkpointing when gradients are being recorded,
    /// and plainly otherwise. <paramref name="block"/> must be a pure function of its input and of module parameters
    /// (it is run twice); other inputs are captured by the closure.
    /// </summary>
    /// <param name="block">The block's forward.</param>
    /// <param name="input">The block's input hidden states.</param>
    /// <returns>The block's output.</returns>
    public static Tensor Apply(Func<Tensor, Tensor> block, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(input);
        if (!torch.is_grad_enabled()) return block(input);
        // A node is only run in backward if an input requires grad; an input that does not (e.g. detached by
        // freeze_und) is replaced by a detached copy that does, so parameter gradients are still produced.
        Tensor carrier = input.requires_grad ? input : input.detach().requires_grad_(true);
        return CheckpointFunction.apply(block, carrier);
    }

    private sealed class CheckpointFunction : SingleTensorFunction<CheckpointFunction>
    {
        private const string BlockKey = "block";
        private const string RandomStateKey = "random_state";

        public override string Name => "BagelActivationCheckpoint";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var block = (Func<Tensor, Tensor>)vars[0];
            var input = (Tensor)vars[1];
            ctx.save_data(BlockKey, block);
            ctx.save_data(RandomStateKey, TorchGlobalRandom.GetState());
            ctx.save_for_backward([input]);
            using (torch.no_grad())
                return block(input);
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
        {
            var block = (Func<Tensor, Tensor>)ctx.get_data(BlockKey);
            var savedState = (byte[])ctx.get_data(RandomStateKey);
            Tensor input = ctx.get_saved_variables()[0];
            byte[] current = TorchGlobalRandom.GetState();
            TorchGlobalRandom.SetState(savedState); // recompute with the draws of the first run (dropout, if any)
            try
            {
                using var scope = torch.NewDisposeScope();
                using var grad = torch.enable_grad();
                Tensor replay = input.detach().requires_grad_(true);
                Tensor output = block(replay);
                torch.autograd.backward([output], [grad_output]);
                Tensor inputGrad = replay.grad is { } g ? g.detach().clone().MoveToOuterDisposeScope() : torch.zeros_like(input).MoveToOuterDisposeScope();
                return [null!, inputGrad];
            }
            finally
            {
                TorchGlobalRandom.SetState(current);
            }
        }
    }
}
