namespace Bagel.Models.Qwen2;

/// <summary>
/// Key maps between checkpoint names and <see cref="Qwen2ForCausalLM"/>'s state dict (<c>model.*</c>,
/// <c>lm_head.weight</c>), for <see cref="global::Bagel.Core.StateDicts.StateDictLoadOptions.KeyMap"/> (model.md §7).
/// </summary>
public static class Qwen2CheckpointKeys
{
    /// <summary>The prefix of the language model inside BAGEL checkpoints (<c>model.safetensors</c>, <c>ema.safetensors</c>).</summary>
    public const string BagelPrefix = "language_model.";

    /// <summary>The RoPE buffer some older Hugging Face files still store; it is recomputed, never loaded.</summary>
    public const string RotaryInvFreqSuffix = "rotary_emb.inv_freq";

    /// <summary>A BAGEL key → module key: strips <see cref="BagelPrefix"/>; keys of other BAGEL parts (ViT,
    /// connector, time embedder, …) map to null (ignored).</summary>
    /// <param name="key">The checkpoint key.</param>
    /// <returns>The module key, or null.</returns>
    public static string? FromBagel(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.StartsWith(BagelPrefix, StringComparison.Ordinal) ? key[BagelPrefix.Length..] : null;
    }

    /// <summary>A module key → its BAGEL checkpoint key (<c>language_model.</c> + key).</summary>
    /// <param name="moduleKey">The state-dict key of <see cref="Qwen2ForCausalLM"/>.</param>
    /// <returns>The BAGEL key.</returns>
    public static string ToBagel(string moduleKey) => BagelPrefix + moduleKey;

    /// <summary>A Hugging Face Qwen2 key (<c>model.*</c>, <c>lm_head.weight</c>) → module key: the same name;
    /// stored RoPE buffers map to null.</summary>
    /// <param name="key">The checkpoint key.</param>
    /// <returns>The module key, or null.</returns>
    public static string? FromHuggingFace(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.EndsWith(RotaryInvFreqSuffix, StringComparison.Ordinal) ? null : key;
    }
}
