namespace Bagel.Data.Packing;

/// <summary>The kind of a sequence-plan item.</summary>
public enum PlanItemKind
{
    /// <summary>A text span: <c>&lt;|im_start|&gt;</c> + ids + <c>&lt;|im_end|&gt;</c>, causal.</summary>
    Text,
    /// <summary>A ViT (understanding) image: vision markers around its patches, full attention.</summary>
    VitImage,
    /// <summary>A VAE (generation) image: vision markers around its latent tokens; noisy when it carries the MSE loss.</summary>
    VaeImage,
}

/// <summary>
/// One item of a sample's sequence plan (the reference's <c>sequence_plan</c> dicts; video-only fields are not
/// supported). Texts and images are consumed in plan order from the sample's lists.
/// </summary>
/// <param name="Kind">The item kind.</param>
/// <param name="EnableCfg">Whether the conditioning dropout may remove this item (<c>enable_cfg</c>).</param>
/// <param name="Loss">Whether the item carries a loss: CE for text, MSE (noisy image) for a VAE image (<c>loss</c>).</param>
/// <param name="SpecialTokenLoss">Whether the closing marker carries a CE label (<c>special_token_loss</c>; 0 in every shipped dataset).</param>
/// <param name="SpecialTokenLabel">That label (<c>special_token_label</c>).</param>
public sealed record PlanItem(PlanItemKind Kind, bool EnableCfg, bool Loss, bool SpecialTokenLoss = false, int SpecialTokenLabel = 0)
{
    /// <summary>A text item.</summary>
    public static PlanItem Text(bool enableCfg, bool loss) => new(PlanItemKind.Text, enableCfg, loss);

    /// <summary>A ViT image item (never carries a loss).</summary>
    public static PlanItem VitImage(bool enableCfg) => new(PlanItemKind.VitImage, enableCfg, false);

    /// <summary>A clean (conditioning) VAE image.</summary>
    public static PlanItem CleanVaeImage(bool enableCfg) => new(PlanItemKind.VaeImage, enableCfg, false);

    /// <summary>A noisy (target) VAE image: carries the MSE loss and is never dropped.</summary>
    public static PlanItem NoisyVaeImage() => new(PlanItemKind.VaeImage, false, true);
}
