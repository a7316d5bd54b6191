using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.Generation;

/// <summary>
/// The numerics of the reference's flow-matching Euler sampler (bagel.py <c>generate_image</c> / <c>_forward_flow</c>):
/// the shifted timestep schedule, the classifier-free guidance combination and its renorm. Pure tensor math, no model.
/// </summary>
public static class FlowSampler
{
    /// <summary>The epsilon added to the guided norm before the renorm division.</summary>
    public const double RenormEpsilon = 1e-8;

    /// <summary>
    /// The schedule: <c>t = linspace(1, 0, n)</c>, <c>t ← s·t / (1 + (s − 1)·t)</c>, step sizes <c>dt[i] = t[i] − t[i+1]</c>;
    /// the sampler visits t[0 … n−2]. Computed in float32 as the reference does.
    /// </summary>
    /// <param name="numTimesteps">n, at least 2.</param>
    /// <param name="timestepShift">s.</param>
    /// <returns>The n − 1 visited timesteps and their step sizes.</returns>
    public static (float[] Timesteps, float[] Dts) Schedule(int numTimesteps, double timestepShift)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numTimesteps, 2);
        using var scope = NewDisposeScope();
        Tensor t = linspace(1, 0, numTimesteps, dtype: float32);
        t = t.mul(timestepShift).div(t.mul(timestepShift - 1).add(1));
        Tensor dts = t.narrow(0, 0, numTimesteps - 1).sub(t.narrow(0, 1, numTimesteps - 1));
        return (t.narrow(0, 0, numTimesteps - 1).data<float>().ToArray(), dts.data<float>().ToArray());
    }

    /// <summary>Whether guidance applies at timestep <paramref name="t"/>: lo &lt; t ≤ hi, compared in float32.</summary>
    /// <param name="t">The step's timestep.</param>
    /// <param name="interval">(lo, hi), the reference's <c>cfg_interval</c>.</param>
    /// <returns>True inside the interval.</returns>
    public static bool InGuidanceInterval(float t, (double Lo, double Hi) interval) =>
        t > (float)interval.Lo && t <= (float)interval.Hi;

    /// <summary>
    /// The guided velocity (the end of <c>_forward_flow</c>). With text scale ≤ 1 the conditional velocity is returned
    /// unchanged. Otherwise <c>v_text = v_cfg_text + s_text·(v − v_cfg_text)</c>; then, for Global/Channel,
    /// <c>v' = v_cfg_img + s_img·(v_text − v_cfg_img)</c> when s_img &gt; 1 (else <c>v_text</c>) rescaled by
    /// <c>clamp(‖v‖ / (‖v'‖ + 1e-8), min, 1)</c> with the norm over everything (Global) or per token (Channel); for
    /// TextChannel <c>v_text</c> is rescaled per token first and image guidance applied after, unscaled.
    /// </summary>
    /// <param name="v">[N, D] conditional velocity.</param>
    /// <param name="cfgTextV">[N, D] velocity of the text-unconditional branch (required when the text scale is &gt; 1).</param>
    /// <param name="cfgImgV">[N, D] velocity of the image-unconditional branch (required when both scales are &gt; 1).</param>
    /// <param name="cfgTextScale">The text scale at this step (1 outside the guidance interval).</param>
    /// <param name="cfgImgScale">The image scale at this step (1 outside the guidance interval).</param>
    /// <param name="renormType">The renorm.</param>
    /// <param name="renormMin">The lower clamp of the renorm scale.</param>
    /// <returns>A new tensor; the caller owns it.</returns>
    /// <exception cref="ArgumentException">A branch needed by the scales is missing.</exception>
    public static Tensor Guide(Tensor v, Tensor? cfgTextV, Tensor? cfgImgV, double cfgTextScale, double cfgImgScale,
        CfgRenormType renormType, double renormMin)
    {
        ArgumentNullException.ThrowIfNull(v);
        if (cfgTextScale <= 1.0) return v.alias();
        if (cfgTextV is null) throw new ArgumentException("Text guidance needs the cfg_text branch's velocity.", nameof(cfgTextV));
        if (cfgImgScale > 1.0 && cfgImgV is null) throw new ArgumentException("Image guidance needs the cfg_img branch's velocity.", nameof(cfgImgV));
        using var scope = NewDisposeScope();
        Tensor vText = cfgTextV.add(v.sub(cfgTextV).mul(cfgTextScale));
        Tensor result;
        if (renormType == CfgRenormType.TextChannel)
        {
            Tensor scale = Ratio(v.norm(-1, true), vText.norm(-1, true), renormMin);
            Tensor vTextScaled = vText.mul(scale);
            result = cfgImgScale > 1.0 ? cfgImgV!.add(vTextScaled.sub(cfgImgV!).mul(cfgImgScale)) : vTextScaled;
        }
        else
        {
            Tensor guided = cfgImgScale > 1.0 ? cfgImgV!.add(vText.sub(cfgImgV!).mul(cfgImgScale)) : vText;
            Tensor scale = renormType == CfgRenormType.Global
                ? Ratio(v.norm(), guided.norm(), renormMin)
                : Ratio(v.norm(-1, true), guided.norm(-1, true), renormMin);
            result = guided.mul(scale);
        }
        return result.MoveToOuterDisposeScope();
    }

    private static Tensor Ratio(Tensor conditionalNorm, Tensor guidedNorm, double renormMin) =>
        conditionalNorm.div(guidedNorm.add(RenormEpsilon)).clamp(renormMin, 1.0);
}
