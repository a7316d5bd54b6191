namespace Bagel.Models.FluxVae;

/// <summary>
/// The shape of a FLUX autoencoder (reference <c>AutoEncoderParams</c>, modeling/autoencoder.py). <see cref="Flux"/>
/// is the released <c>ae.safetensors</c>; tiny configurations serve tests. Every width <c>Ch·ChMult[i]</c> must be a
/// multiple of <see cref="GroupNormGroups"/>.
/// </summary>
/// <param name="InChannels">Image channels in (default 3).</param>
/// <param name="Ch">Base width <c>ch</c> (FLUX: 128).</param>
/// <param name="OutChannels">Image channels out, <c>out_ch</c> (default 3).</param>
/// <param name="ChMult">Width multiplier per resolution level, <c>ch_mult</c> (FLUX: [1, 2, 4, 4]).</param>
/// <param name="NumResBlocks">ResNet blocks per encoder level, <c>num_res_blocks</c> (FLUX: 2; the decoder uses one more).</param>
/// <param name="ZChannels">Latent channels, <c>z_channels</c> (FLUX: 16).</param>
/// <param name="ScaleFactor">Latent scale, <c>scale_factor</c> (FLUX: 0.3611).</param>
/// <param name="ShiftFactor">Latent shift, <c>shift_factor</c> (FLUX: 0.1159).</param>
public sealed record FluxVaeConfig(
    int InChannels,
    int Ch,
    int OutChannels,
    IReadOnlyList<int> ChMult,
    int NumResBlocks,
    int ZChannels,
    double ScaleFactor,
    double ShiftFactor)
{
    /// <summary>GroupNorm groups in every norm of the reference (<c>num_groups=32</c>, hard-coded there).</summary>
    public const int GroupNormGroups = 32;

    /// <summary>GroupNorm epsilon in every norm of the reference (<c>eps=1e-6</c>).</summary>
    public const double GroupNormEpsilon = 1e-6;

    /// <summary>The released FLUX VAE (reference <c>load_ae</c>): ch 128, ch_mult [1,2,4,4], 2 res blocks, z 16,
    /// scale 0.3611, shift 0.1159; 8× downsampling.</summary>
    public static FluxVaeConfig Flux { get; } = new(3, 128, 3, [1, 2, 4, 4], 2, 16, 0.3611, 0.1159);

    /// <summary>The spatial downsampling factor, 2^(levels − 1) (FLUX: 8).</summary>
    public int DownsampleFactor => 1 << (ChMult.Count - 1);

    /// <summary>The width of the lowest-resolution level, <c>ch·ch_mult[-1]</c> (mid blocks, FLUX: 512).</summary>
    public int BottleneckChannels => Ch * ChMult[^1];

    /// <summary>Checks the configuration; every problem is reported at once.</summary>
    /// <exception cref="FluxVaeException">A value is out of range.</exception>
    public void Validate()
    {
        var problems = new List<string>();
        if (InChannels <= 0) problems.Add($"InChannels must be positive (got {InChannels}).");
        if (OutChannels <= 0) problems.Add($"OutChannels must be positive (got {OutChannels}).");
        if (ZChannels <= 0) problems.Add($"ZChannels must be positive (got {ZChannels}).");
        if (NumResBlocks <= 0) problems.Add($"NumResBlocks must be positive (got {NumResBlocks}).");
        if (ChMult is null || ChMult.Count == 0) problems.Add("ChMult must name at least one level.");
        else
        {
            foreach (int mult in ChMult)
            {
                long width = (long)Ch * mult;
                if (mult <= 0 || width <= 0 || width % GroupNormGroups != 0)
                    problems.Add($"Every width Ch·ChMult[i] must be a positive multiple of {GroupNormGroups} (GroupNorm groups); Ch {Ch} × {mult} = {width}.");
            }
        }
        if (!(ScaleFactor > 0 && double.IsFinite(ScaleFactor))) problems.Add($"ScaleFactor must be positive and finite (got {ScaleFactor}).");
        if (!double.IsFinite(ShiftFactor)) problems.Add($"ShiftFactor must be finite (got {ShiftFactor}).");
        if (problems.Count > 0)
            throw new FluxVaeException("Invalid FLUX VAE configuration: " + string.Join(" ", problems));
    }
}
