namespace Bagel.Models.Memory;

/// <summary>
/// Callbacks around each decoder layer of a <see cref="Qwen2.Qwen2Model"/> (install them with
/// <see cref="Qwen2.Qwen2Model.LayerHooks"/>), for sharded training that keeps a layer's full parameters only while the
/// layer runs: gather them just before, release them just after, and reduce-scatter the layer's gradients as soon as
/// they are final.
/// </summary>
/// <remarks>
/// <para><b>Order.</b> A training forward calls <see cref="BeforeForward"/> then <see cref="AfterForward"/> for layers
/// 0, 1, …, L−1. With activation checkpointing (<see cref="Qwen2.Qwen2Model.GradientCheckpointing"/> on, the module in
/// training mode and gradients enabled) the backward pass then calls <see cref="BeforeBackward"/> and
/// <see cref="AfterBackward"/> for layers L−1, …, 0: once per layer per backward pass, so a step that accumulates
/// gradients over k micro-batches sees k forward and k backward rounds. Without checkpointing the backward calls
/// nothing (the autograd graph runs the layers' backward on the tensors it saved). The inference forward
/// (<see cref="Qwen2.Qwen2Model.ForwardInference"/>) calls the forward pair too.</para>
/// <para><b>Releasing parameters.</b> The forward callbacks receive <c>parametersReleasable</c>. When it is true, no
/// autograd graph holds the layer's parameter tensors: with checkpointing the forward runs under <c>no_grad</c> and
/// the backward recomputes the layer between <see cref="BeforeBackward"/> and <see cref="AfterBackward"/>; without
/// gradients (evaluation) nothing is recorded at all. A hook may then swap each parameter's storage in place
/// (<c>Parameter.set_(gathered)</c>, under <c>no_grad</c>) in <see cref="BeforeForward"/>/<see cref="BeforeBackward"/> and
/// release it (<c>set_</c> to an empty tensor) in <see cref="AfterForward"/>/<see cref="AfterBackward"/>; the layer
/// reads its parameters only while it runs, so the results are exactly those without the hook. When it is false
/// (training without checkpointing), the graph has saved the parameter tensors for the backward pass: the hook may
/// fill them before the layer runs but must leave them as they are afterwards; the model checks that every parameter
/// of the layer still has its element count after <see cref="AfterForward"/> and throws
/// <see cref="InvalidOperationException"/> naming the layer otherwise.</para>
/// <para><b>Gradients.</b> Each decoder layer's parameters are used by that layer only, so when
/// <see cref="AfterBackward"/> is called the layer's <c>.grad</c> tensors hold everything this backward pass
/// contributes (added to what earlier micro-batches accumulated, as usual); a hook may reduce-scatter them there.</para>
/// <para><b>Threads and grad mode.</b> The model calls every hook under <c>no_grad</c>, one call at a time. The
/// backward callbacks run where the autograd engine runs the layer's backward: on the calling thread for CPU tensors,
/// on the engine's device thread for CUDA tensors, so a hook that calls a thread-bound library (MPI) must allow that.
/// An exception from a forward hook propagates to the caller of the forward. One from a backward hook cannot cross
/// libtorch's autograd engine (it would abort the process): the backward pass is made to fail instead, and
/// <see cref="ActivationCheckpoint.Backward"/> (or <see cref="ActivationCheckpoint.TakeBackwardFailure"/> after a
/// failed <c>backward()</c>) gives the hook's exception.</para>
/// </remarks>
public interface IDecoderLayerHooks
{
    /// <summary>Called just before decoder layer <paramref name="layerIndex"/> runs in a forward pass.</summary>
    /// <param name="layerIndex">The layer's index, 0-based.</param>
    /// <param name="parametersReleasable">True when no autograd graph will hold the layer's parameters after it runs
    /// (checkpointed training forward, or no gradients); see the remarks.</param>
    void BeforeForward(int layerIndex, bool parametersReleasable);

    /// <summary>Called just after decoder layer <paramref name="layerIndex"/> has run in a forward pass.</summary>
    /// <param name="layerIndex">The layer's index, 0-based.</param>
    /// <param name="parametersReleasable">Whether the hook may now release the layer's parameter storage (see the
    /// remarks); when false, releasing them is refused with <see cref="InvalidOperationException"/>.</param>
    void AfterForward(int layerIndex, bool parametersReleasable);

    /// <summary>
    /// Called in the backward pass (with activation checkpointing only) just before decoder layer
    /// <paramref name="layerIndex"/> is recomputed; the layer's full parameters must be in place when it returns.
    /// </summary>
    /// <param name="layerIndex">The layer's index, 0-based.</param>
    void BeforeBackward(int layerIndex);

    /// <summary>
    /// Called in the backward pass (with activation checkpointing only) after the recomputed layer
    /// <paramref name="layerIndex"/> has been back-propagated: its parameters' <c>.grad</c> tensors are final for this
    /// backward pass, and its parameter storage may be released.
    /// </summary>
    /// <param name="layerIndex">The layer's index, 0-based.</param>
    void AfterBackward(int layerIndex);
}
