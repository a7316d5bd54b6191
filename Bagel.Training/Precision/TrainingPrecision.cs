using TorchSharp;

namespace Bagel.Training.Precision;

/// <summary>
/// How a training step computes (docs/precision.md). The optimizer, the EMA copy and the checkpoints always see the
/// float32 master parameters; only the forward and backward passes change.
/// </summary>
public enum TrainingPrecision
{
    /// <summary>Everything in float32: the model's own parameters run the forward and backward passes.</summary>
    Fp32,

    /// <summary>
    /// The reference's FSDP mixed precision (model.md §10): a bfloat16 working copy of the model runs the forward and
    /// backward passes (bf16 matmuls, activations, buffers), with the reference's float32 islands (RMSNorm variance,
    /// timestep embedding, softmax inside attention, GroupNorm and the posterior in the VAE encode, losses); its bf16
    /// gradients are accumulated into float32 gradients of the float32 master parameters, which AdamW (float32 state)
    /// updates and the EMA averages.
    /// </summary>
    Bf16Mixed,
}

/// <summary>Parses and names <see cref="TrainingPrecision"/> values (<c>--precision bf16|fp32|auto</c>).</summary>
public static class TrainingPrecisionNames
{
    /// <summary>The flag value that picks bf16 on CUDA and fp32 on the CPU.</summary>
    public const string Auto = "auto";

    /// <summary>The accepted flag values, for error messages.</summary>
    public const string AcceptedNames = "'auto' (bf16 on CUDA, fp32 on the CPU), 'bf16' (also 'bfloat16', 'bf16-mixed'), 'fp32' (also 'float32', 'f32')";

    /// <summary>Parses a flag value; <c>auto</c> resolves against <paramref name="device"/>.</summary>
    /// <param name="name">The value (case-insensitive).</param>
    /// <param name="device">The compute device <c>auto</c> resolves against.</param>
    /// <param name="precision">The parsed precision.</param>
    /// <returns>False when the name is not one of <see cref="AcceptedNames"/>.</returns>
    public static bool TryParse(string? name, torch.Device device, out TrainingPrecision precision)
    {
        ArgumentNullException.ThrowIfNull(device);
        switch ((name ?? Auto).Trim().ToLowerInvariant())
        {
            case "" or Auto:
                precision = DefaultFor(device);
                return true;
            case "bf16" or "bfloat16" or "bf16-mixed" or "bf16mixed":
                precision = TrainingPrecision.Bf16Mixed;
                return true;
            case "fp32" or "float32" or "f32":
                precision = TrainingPrecision.Fp32;
                return true;
            default:
                precision = TrainingPrecision.Fp32;
                return false;
        }
    }

    /// <summary>Whether <paramref name="name"/> is an accepted value (without resolving <c>auto</c>).</summary>
    public static bool IsValid(string? name) => TryParse(name, torch.CPU, out _);

    /// <summary>The default on <paramref name="device"/>: bf16 mixed on CUDA (as the reference trains), fp32 on the CPU.</summary>
    public static TrainingPrecision DefaultFor(torch.Device device) =>
        (device ?? throw new ArgumentNullException(nameof(device))).type == DeviceType.CUDA ? TrainingPrecision.Bf16Mixed : TrainingPrecision.Fp32;

    /// <summary>The flag spelling of <paramref name="precision"/> (<c>fp32</c> or <c>bf16</c>).</summary>
    public static string Format(TrainingPrecision precision) => precision == TrainingPrecision.Bf16Mixed ? "bf16" : "fp32";
}
