namespace Bagel.Core.Batching;

/// <summary>The attention mode of one split of a packed sample (training.md §4.6, model.md §2.6).</summary>
public enum AttentionMode
{
    /// <summary>Text (<c>causal</c>): each token sees earlier tokens of its sample.</summary>
    Causal,

    /// <summary>A ViT image or clean VAE image with its two markers (<c>full</c>): bidirectional inside the split,
    /// and sees everything earlier in the sample.</summary>
    Full,

    /// <summary>A noisy (target) VAE image with its markers (<c>noise</c>): like <see cref="Full"/>, but no other
    /// split ever sees it.</summary>
    Noise,
}
