namespace Bagel.Models.Generation;

/// <summary>How the guided velocity is rescaled toward the conditional one (the reference's <c>cfg_renorm_type</c>);
/// the scale is <c>clamp(‖v_cond‖ / (‖v_guided‖ + 1e-8), cfg_renorm_min, 1)</c>.</summary>
public enum CfgRenormType
{
    /// <summary><c>"global"</c>: one norm over all latent tokens and channels (the reference's default; as there, it
    /// assumes one image per call).</summary>
    Global,

    /// <summary><c>"channel"</c>: one norm per latent token, over its p·p·C features.</summary>
    Channel,

    /// <summary><c>"text_channel"</c>: per-token renorm of the text-guided velocity only, applied before image guidance.</summary>
    TextChannel,
}
