namespace Bagel.Models.Qwen2;

/// <summary>The decoder layer kind, the reference's <c>layer_module</c> (model.md §2.2).</summary>
public enum Qwen2LayerModule
{
    /// <summary><c>Qwen2DecoderLayer</c>: one set of weights for all tokens.</summary>
    Qwen2DecoderLayer,

    /// <summary><c>Qwen2MoEDecoderLayer</c>: shared attention and norms, the MLP split into und/gen experts.</summary>
    Qwen2MoEDecoderLayer,

    /// <summary><c>Qwen2MoTDecoderLayer</c>: every weight-bearing sub-module has a <c>_moe_gen</c> twin (the released model).</summary>
    Qwen2MoTDecoderLayer,
}
