namespace Bagel.Data.Packing;

/// <summary>
/// Packing settings, with the reference's names and defaults (<c>PackedDataset</c> and <c>DataConfig</c>).
/// </summary>
public sealed record PackingOptions
{
    /// <summary><c>expected_num_tokens</c>: a batch is yielded once it holds at least this many tokens (default 32768).</summary>
    public int ExpectedNumTokens { get; init; } = 32768;

    /// <summary><c>max_num_tokens</c>: hard cap of one packed batch (default 36864).</summary>
    public int MaxNumTokens { get; init; } = 36864;

    /// <summary><c>max_num_tokens_per_sample</c>: longer samples are skipped (default 16384).</summary>
    public int MaxNumTokensPerSample { get; init; } = 16384;

    /// <summary><c>prefer_buffer_before</c>: while the batch is shorter, buffered samples are used first (default 16384).</summary>
    public int PreferBufferBefore { get; init; } = 16384;

    /// <summary><c>max_buffer_size</c>: samples that did not fit wait here (default 50).</summary>
    public int MaxBufferSize { get; init; } = 50;

    /// <summary><c>text_cond_dropout_prob</c> (DataConfig default 0.1; the trainer passes its own 0.1 when visual_gen).</summary>
    public double TextCondDropoutProb { get; init; } = 0.1;

    /// <summary><c>vit_cond_dropout_prob</c> (DataConfig default 0.4; the trainer passes 0.3 when visual_gen).</summary>
    public double VitCondDropoutProb { get; init; } = 0.4;

    /// <summary><c>vae_cond_dropout_prob</c> (DataConfig default 0.1; the trainer passes 0.3 when visual_gen).</summary>
    public double VaeCondDropoutProb { get; init; } = 0.1;

    /// <summary><c>max_latent_size</c>: latent position ids are <c>row·max_latent_size + col</c> (default 32).</summary>
    public int MaxLatentSize { get; init; } = 32;

    /// <summary><c>max_num_patch_per_side</c>: ViT position ids are <c>row·70 + col</c> (default 70).</summary>
    public int MaxNumPatchPerSide { get; init; } = 70;

    /// <summary><c>interpolate_pos</c>: bucket fractional coordinates onto the grid instead of extrapolating (default false).</summary>
    public bool InterpolatePos { get; init; }

    /// <summary>Image pixels per latent token side: the VAE's downsampling × <c>latent_patch_size</c> (the reference's
    /// <c>vae_image_downsample</c>; default 16 = FLUX's 8 × 2). VAE images are cut into latent grids of (H/this, W/this)
    /// tokens, and their sides must be multiples of it.</summary>
    public int PixelsPerLatentToken { get; init; } = PackableSample.VaeStride;

    /// <summary><c>special_token_loss</c> for the images to generate: the closing <c>&lt;|im_end|&gt;</c> of a text item
    /// directly followed (in its plan) by a noisy VAE image carries the CE label <c>&lt;|vision_start|&gt;</c> with weight
    /// 1, as a plan item with <c>special_token_loss = 1, special_token_label = start_of_image</c> would (default false, as
    /// every shipped dataset). Items that set their own <see cref="PlanItem.SpecialTokenLoss"/> keep their label.</summary>
    public bool SpecialTokenLoss { get; init; }

    /// <summary>Throws one <see cref="ArgumentException"/> listing every invalid value.</summary>
    public void Validate()
    {
        var errors = new List<string>();
        if (ExpectedNumTokens < 1) errors.Add($"expected_num_tokens must be positive (got {ExpectedNumTokens}).");
        if (MaxNumTokens < ExpectedNumTokens) errors.Add($"max_num_tokens ({MaxNumTokens}) must be at least expected_num_tokens ({ExpectedNumTokens}).");
        if (MaxNumTokensPerSample < 1) errors.Add($"max_num_tokens_per_sample must be positive (got {MaxNumTokensPerSample}).");
        if (MaxNumTokensPerSample > MaxNumTokens) errors.Add($"max_num_tokens_per_sample ({MaxNumTokensPerSample}) must not exceed max_num_tokens ({MaxNumTokens}): such samples could never be packed.");
        if (MaxBufferSize < 0) errors.Add($"max_buffer_size must be zero or more (got {MaxBufferSize}).");
        foreach (var (name, p) in new[] { ("text_cond_dropout_prob", TextCondDropoutProb), ("vit_cond_dropout_prob", VitCondDropoutProb), ("vae_cond_dropout_prob", VaeCondDropoutProb) })
            if (p is < 0 or > 1 || double.IsNaN(p)) errors.Add($"{name} must be in [0, 1] (got {p}).");
        if (MaxLatentSize < 1) errors.Add($"max_latent_size must be positive (got {MaxLatentSize}).");
        if (PixelsPerLatentToken < 1) errors.Add($"the VAE's pixels per latent token (vae_image_downsample) must be positive (got {PixelsPerLatentToken}).");
        if (MaxNumPatchPerSide < 1) errors.Add($"max_num_patch_per_side must be positive (got {MaxNumPatchPerSide}).");
        if (errors.Count > 0) throw new ArgumentException("Invalid packing options: " + string.Join(" ", errors));
    }
}
