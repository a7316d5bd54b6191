namespace Bagel.Core.Randomness;

/// <summary>
/// The purpose names Bagel.NET derives streams from (<see cref="SeedDerivation.Derive"/>). They are part of the
/// checkpoint format (RNG states are saved under these names), so never rename one.
/// </summary>
public static class RandomPurposes
{
    /// <summary>Weighted choice of the dataset group for the next sample (reference: <c>random.random()</c> in the packer, training.md §2.7).</summary>
    public const string GroupSampling = "data.group_sampling";

    /// <summary>Per-sample choices inside a dataset: caption choice (T2I), edit chain start/end and wording (edit).</summary>
    public const string SampleParsing = "data.sample_parsing";

    /// <summary>Conditioning dropout of text / ViT / VAE items (reference: <c>random.random()</c> per cfg item, training.md §4.3).</summary>
    public const string ConditionDropout = "data.condition_dropout";

    /// <summary>Raw timestep per noisy image (reference: <c>np.random.randn()</c>, model.md §4.5).</summary>
    public const string Timesteps = "data.timesteps";

    /// <summary>Flow-matching noise ε over the latent tokens (reference: <c>torch.randn_like</c> in bagel.py).</summary>
    public const string FlowNoise = "model.flow_noise";

    /// <summary>VAE posterior sampling noise (reference: <c>torch.randn_like(mean)</c> in autoencoder.py).</summary>
    public const string VaePosteriorNoise = "model.vae_posterior_noise";

    /// <summary>The initial noise of image generation (reference: <c>torch.randn</c> in bagel.py <c>prepare_vae_latent</c>).</summary>
    public const string GenerationNoise = "generation.noise";

    /// <summary>Token sampling while decoding text (reference: <c>torch.multinomial</c> in bagel.py <c>generate_text</c>;
    /// here one uniform per token through the inverse CDF).</summary>
    public const string TextSampling = "generation.text_sampling";
}
