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
    public static Tensor Apply(Func<Tensor, Tensor> block, Tensor input) => Apply(block, input, null, null);

    /// <summary>
    /// Like <see cref="Apply(Func{Tensor, Tensor}, Tensor)"/>, with callbacks around the backward pass's recomputation:
    /// <paramref name="beforeRecompute"/> runs just before the block is re-run and <paramref name="afterBackward"/>
    /// just after the recomputation has been back-propagated (the block's parameter gradients are then accumulated).
    /// Both run under <c>no_grad</c>, outside the restored random state; neither runs when gradients are not recorded.
    /// </summary>
    /// <param name="block">The block's forward.</param>
    /// <param name="input">The block's input hidden states.</param>
    /// <param name="beforeRecompute">Called before the recomputation, or null.</param>
    /// <param name="afterBackward">Called after the recomputation's backward, or null.</param>
    /// <returns>The block's output.</returns>
    public static Tensor Apply(Func<Tensor, Tensor> block, Tensor input, Action? beforeRecompute, Action? afterBackward)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(input);
        if (!torch.is_grad_enabled()) return block(input);
        // A node is only run in backward if an input requires grad; an input that does not (e.g. detached by
        // freeze_und) is replaced by a detached copy that does, so parameter gradients are still produced.
        Tensor carrier = input.requires_grad ? input : input.detach().requires_grad_(true);
        return CheckpointFunction.apply(new Callbacks(block, beforeRecompute, afterBackward), carrier);
    }

    private static Exception? _backwardFailure;

    /// <summary>
    /// Returns and clears the first exception thrown inside a checkpointed block's backward (its recomputation or a
    /// callback) since the last call, or null. Such an exception cannot cross libtorch's autograd engine: the backward
    /// pass is made to fail instead (the caller's <c>backward()</c> throws libtorch's "Function CSharpNode returned an
    /// invalid gradient" error), and this returns the real cause. <see cref="Backward"/> does both.
    /// </summary>
    /// <returns>The first failure, or null.</returns>
    public static Exception? TakeBackwardFailure() => Interlocked.Exchange(ref _backwardFailure, null);

    /// <summary>
    /// Runs <c>loss.backward()</c>; when a checkpointed block's backward failed (e.g. a decoder-layer hook threw a
    /// collective timeout), rethrows that exception (its own type and stack) instead of libtorch's error.
    /// </summary>
    /// <param name="loss">The scalar to back-propagate.</param>
    public static void Backward(Tensor loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        _ = TakeBackwardFailure();
        try
        {
            loss.backward();
        }
        catch (Exception e) when (TakeBackwardFailure() is { } cause)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(cause).Throw();
            throw new InvalidOperationException("unreachable", e);
        }
    }

    private sealed record Callbacks(Func<Tensor, Tensor> Block, Action? BeforeRecompute, Action? AfterBackward);

    private sealed class CheckpointFunction : SingleTensorFunction<CheckpointFunction>
    {
        private const string BlockKey = "block";
        private const string RandomStateKey = "random_state";

        public override string Name => "BagelActivationCheckpoint";

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var callbacks = (Callbacks)vars[0];
            var input = (Tensor)vars[1];
            ctx.save_data(BlockKey, callbacks);
            ctx.save_data(RandomStateKey, TorchGlobalRandom.GetState());
            ctx.save_for_backward([input]);
            using (torch.no_grad())
                return callbacks.Block(input);
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
        {
            // A managed exception must not leave this callback (libtorch's engine calls it natively: the process would
            // abort). It is kept for TakeBackwardFailure and the engine is made to fail instead, by returning a
            // gradient of the wrong shape, so the caller's backward() throws.
            try
            {
                return BackwardCore(ctx, grad_output);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _backwardFailure, e, null);
                Tensor input = ctx.get_saved_variables()[0];
                return [null!, torch.zeros(input.dim() == 0 ? 2 : 0, input.dtype, input.device)];
            }
        }

        private static List<Tensor> BackwardCore(AutogradContext ctx, Tensor grad_output)
        {
            var callbacks = (Callbacks)ctx.get_data(BlockKey);
            var savedState = (byte[])ctx.get_data(RandomStateKey);
            Tensor input = ctx.get_saved_variables()[0];
            if (callbacks.BeforeRecompute is { } before)
            {
                using (torch.no_grad()) before();
            }
            Tensor inputGrad;
            byte[] current = TorchGlobalRandom.GetState();
            TorchGlobalRandom.SetState(savedState); // recompute with the draws of the first run (dropout, if any)
            try
            {
                using var scope = torch.NewDisposeScope();
                using var grad = torch.enable_grad();
                Tensor replay = input.detach().requires_grad_(true);
                Tensor output = callbacks.Block(replay);
                torch.autograd.backward([output], [grad_output]);
                inputGrad = replay.grad is { } g ? g.detach().clone().MoveToOuterDisposeScope() : torch.zeros_like(input).MoveToOuterDisposeScope();
            }
            finally
            {
                TorchGlobalRandom.SetState(current);
            }
            if (callbacks.AfterBackward is { } after)
            {
                using (torch.no_grad()) after();
            }
            return [null!, inputGrad];
        }
    }
}
