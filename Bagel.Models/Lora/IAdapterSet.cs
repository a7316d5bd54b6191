using TorchSharp;

namespace Bagel.Models.Lora;

/// <summary>
/// Parameter-efficient adapters attached to a frozen base model: the only trainable state of a fine-tune. The
/// <see cref="Module"/>'s state dict is what a training checkpoint and the EMA hold; merging folds the adapters into the
/// base weights and unmerging restores them exactly.
/// </summary>
public interface IAdapterSet : IDisposable
{
    /// <summary>The module holding the adapters' parameters (the optimizer's and the EMA's view).</summary>
    torch.nn.Module Module { get; }

    /// <summary>The adapted module paths, in the base model's state-dict names.</summary>
    IReadOnlyList<string> TargetPaths { get; }

    /// <summary>Whether the adapters are folded into the base weights.</summary>
    bool IsMerged { get; }

    /// <summary>Folds every adapter into its base weight.</summary>
    void Merge();

    /// <summary>Restores every base weight to its value before <see cref="Merge"/>, bit for bit.</summary>
    void Unmerge();

    /// <summary>A new module of the same adapter shapes and names, not attached to the base (for the EMA copy).</summary>
    torch.nn.Module CreateDetachedTwin();
}
