namespace Bagel.Models.Generation;

/// <summary>
/// Sampling settings for image generation, under the reference's names (inferencer.py
/// <c>InterleaveInferencer.interleave_inference</c>, whose defaults these are; bagel.py <c>generate_image</c> has
/// weaker ones: no guidance, 24 steps, shift 1).
/// </summary>
public sealed record ImageGenerationOptions
{
    /// <summary>Image height in pixels (<c>image_shapes[0]</c>); a multiple of the VAE downsample × latent patch size
    /// (16 for BAGEL) and at most that × <c>max_latent_size</c>. Default 1024.</summary>
    public int Height { get; init; } = 1024;

    /// <summary>Image width in pixels (<c>image_shapes[1]</c>); same constraints as <see cref="Height"/>. Default 1024.</summary>
    public int Width { get; init; } = 1024;

    /// <summary><c>cfg_text_scale</c>: text guidance strength; 1 or less switches guidance off entirely (image
    /// guidance too, as in the reference). Default 3.0 (inferencer <c>gen_image</c> uses 4.0).</summary>
    public double CfgTextScale { get; init; } = 3.0;

    /// <summary><c>cfg_img_scale</c>: image guidance strength (the branch conditioned on text but no input image);
    /// 1 or less skips that branch. Default 1.5.</summary>
    public double CfgImgScale { get; init; } = 1.5;

    /// <summary><c>cfg_interval</c>: guidance applies at steps whose timestep t satisfies lo &lt; t ≤ hi (t runs from 1 =
    /// noise to 0). Default (0.4, 1.0).</summary>
    public (double Lo, double Hi) CfgInterval { get; init; } = (0.4, 1.0);

    /// <summary><c>cfg_renorm_min</c>: the lower clamp of the renorm scale (1 disables the renorm). Default 0.</summary>
    public double CfgRenormMin { get; init; }

    /// <summary><c>cfg_renorm_type</c>. Default <see cref="CfgRenormType.Global"/>.</summary>
    public CfgRenormType CfgRenormType { get; init; } = CfgRenormType.Global;

    /// <summary><c>num_timesteps</c>: points of the schedule linspace(1, 0, n); n − 1 Euler steps. Default 50.</summary>
    public int NumTimesteps { get; init; } = 50;

    /// <summary><c>timestep_shift</c>: t ↦ s·t / (1 + (s − 1)·t) on the schedule (more steps near noise for s &gt; 1).
    /// Default 3.0.</summary>
    public double TimestepShift { get; init; } = 3.0;

    /// <summary>Reuse the keys and values of the prefilled contexts (the prompt and any inputs) at every step and in
    /// every guidance branch, as the reference does (its <c>NaiveCache</c>), so a step costs only the image's tokens.
    /// False recomputes each context's whole prefix for every branch at every step, from the text segments it was built
    /// with (<see cref="BagelGenerator.AppendText"/>): the same numbers (to float rounding), slower; it exists to
    /// measure what the cache saves (<c>Bagel.Benchmarks generate</c>). Default true.</summary>
    public bool UsePrefixCache { get; init; } = true;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        if (Height <= 0 || Width <= 0) throw new ArgumentException($"Image size {Height}×{Width} must be positive.");
        if (NumTimesteps < 2) throw new ArgumentException($"num_timesteps {NumTimesteps} must be at least 2 (one Euler step).");
        if (TimestepShift <= 0) throw new ArgumentException($"timestep_shift {TimestepShift} must be positive.");
        if (CfgInterval.Lo > CfgInterval.Hi) throw new ArgumentException($"cfg_interval ({CfgInterval.Lo}, {CfgInterval.Hi}) is reversed.");
    }
}
