using System.Globalization;

namespace Bagel.Models.Siglip;

/// <summary>
/// Key maps between checkpoint names and <see cref="SiglipVisionModel"/>'s state dict (<c>vision_model.*</c>), for
/// <see cref="global::Bagel.Core.StateDicts.StateDictLoadOptions.KeyMap"/> (model.md §7).
/// </summary>
public static class SiglipCheckpointKeys
{
    /// <summary>The prefix of the vision tower inside BAGEL checkpoints (<c>model.safetensors</c>, <c>ema.safetensors</c>).</summary>
    public const string BagelPrefix = "vit_model.";

    /// <summary>The prefix of the vision tower in Hugging Face SigLIP files (vision-only and full text + vision files).</summary>
    public const string VisionPrefix = "vision_model.";

    /// <summary>The patch projection weight: conv-shaped [hidden, channels, patch, patch] in Hugging Face files,
    /// Linear-shaped [hidden, channels·patch²] in the tower and in BAGEL checkpoints.</summary>
    public const string PatchEmbeddingWeight = "vision_model.embeddings.patch_embedding.weight";

    /// <summary>SigLIP's attention-pooling head (<c>vision_model.head.*</c>), which BAGEL never builds.</summary>
    public const string PoolingHeadPrefix = "vision_model.head.";

    private const string LayersPrefix = "vision_model.encoder.layers.";

    /// <summary>A BAGEL key → module key: strips <see cref="BagelPrefix"/>; keys of other BAGEL parts map to null (ignored).</summary>
    /// <param name="key">The checkpoint key.</param>
    /// <returns>The module key, or null.</returns>
    public static string? FromBagel(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.StartsWith(BagelPrefix, StringComparison.Ordinal) ? key[BagelPrefix.Length..] : null;
    }

    /// <summary>A module key → its BAGEL checkpoint key (<c>vit_model.</c> + key).</summary>
    /// <param name="moduleKey">The state-dict key of <see cref="SiglipVisionModel"/>.</param>
    /// <returns>The BAGEL key.</returns>
    public static string ToBagel(string moduleKey) => BagelPrefix + moduleKey;

    /// <summary>The key map for a Hugging Face SigLIP file loaded into a tower of <paramref name="numHiddenLayers"/>
    /// layers (model.md §8.1): names are kept; the text tower, <c>logit_scale</c>/<c>logit_bias</c>, the pooling head and
    /// every layer at index ≥ <paramref name="numHiddenLayers"/> (layer 27 of so400m) map to null (ignored).</summary>
    /// <param name="numHiddenLayers">The tower's layer count (after the trainer's override).</param>
    /// <returns>The key map.</returns>
    public static Func<string, string?> FromHuggingFace(int numHiddenLayers) => key =>
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!key.StartsWith(VisionPrefix, StringComparison.Ordinal) || key.StartsWith(PoolingHeadPrefix, StringComparison.Ordinal))
            return null;
        return LayerIndex(key) is int layer && layer >= numHiddenLayers ? null : key;
    };

    /// <summary>The encoder layer a key belongs to, or null for keys outside <c>vision_model.encoder.layers</c>.</summary>
    /// <param name="key">A module or Hugging Face key.</param>
    /// <returns>The layer index, or null.</returns>
    public static int? LayerIndex(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!key.StartsWith(LayersPrefix, StringComparison.Ordinal)) return null;
        int dot = key.IndexOf('.', LayersPrefix.Length);
        return dot > LayersPrefix.Length && int.TryParse(key.AsSpan(LayersPrefix.Length, dot - LayersPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int layer)
            ? layer
            : null;
    }
}
