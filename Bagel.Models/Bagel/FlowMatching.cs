using Bagel.Core.Randomness;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Models.Bagel;

/// <summary>
/// BAGEL's rectified-flow training inputs (the visual-generation branch of reference <c>Bagel.forward</c>):
/// ε ~ N(0, 1) like x0 (drawn first, through <see cref="IRandomSource"/>), t = sigmoid(raw) then
/// t ← s·t / (1 + (s − 1)·t), x_t = (1 − t)·x0 + t·ε, and the velocity target ε − x0 (from data to noise). Clean
/// conditioning latents carry raw −inf, so t = 0 and x_t = x0 exactly.
/// </summary>
public static class FlowMatching
{
    /// <summary>Reference training default <c>timestep_shift</c>: 1.0, no shift.</summary>
    public const double DefaultTimestepShift = 1.0;

    /// <summary>The reference's timestep map: <c>t = sigmoid(raw)</c>, then <c>s·t / (1 + (s − 1)·t)</c>, in the
    /// reference's op order.</summary>
    /// <param name="rawTimesteps">[N] raw draws (−inf for clean tokens).</param>
    /// <param name="shift">s, <c>timestep_shift</c> (positive).</param>
    /// <returns>[N] timesteps in [0, 1], same dtype.</returns>
    public static Tensor ShiftedTimesteps(Tensor rawTimesteps, double shift = DefaultTimestepShift)
    {
        ArgumentNullException.ThrowIfNull(rawTimesteps);
        if (!(shift > 0 && double.IsFinite(shift)))
            throw new ArgumentOutOfRangeException(nameof(shift), shift, "timestep_shift must be positive and finite.");
        using var scope = NewDisposeScope();
        Tensor t = rawTimesteps.sigmoid();
        Tensor numerator = t.mul(shift);
        Tensor denominator = t.mul(shift - 1).add(1);
        return numerator.div(denominator).MoveToOuterDisposeScope();
    }

    /// <summary>Draws ε and builds x_t, t and the target for the packed clean latent tokens.</summary>
    /// <param name="x0">[N, D] clean latent tokens (<c>packed_latent_clean</c>), float32.</param>
    /// <param name="rawTimesteps">[N] raw timesteps per token (<c>packed_timesteps</c>).</param>
    /// <param name="random">The flow-noise source (<see cref="RandomPurposes.FlowNoise"/>): one tensor like x0.</param>
    /// <param name="shift">s, <c>timestep_shift</c> (default 1.0).</param>
    /// <returns>The inputs; the caller disposes them.</returns>
    /// <exception cref="ArgumentException">The shapes disagree.</exception>
    public static FlowMatchingInputs Prepare(Tensor x0, Tensor rawTimesteps, IRandomSource random, double shift = DefaultTimestepShift)
    {
        ArgumentNullException.ThrowIfNull(x0);
        ArgumentNullException.ThrowIfNull(rawTimesteps);
        ArgumentNullException.ThrowIfNull(random);
        if (x0.dim() != 2 || rawTimesteps.dim() != 1 || rawTimesteps.shape[0] != x0.shape[0])
            throw new ArgumentException(
                $"Flow matching needs x0 [N, D] and one raw timestep per token [N]; got x0 [{string.Join(", ", x0.shape)}] and timesteps [{string.Join(", ", rawTimesteps.shape)}].",
                nameof(rawTimesteps));
        using var scope = NewDisposeScope();
        // Same draw order as the reference: noise first, then the timestep map.
        Tensor noise = random.NextStandardNormalTensor(x0.shape, x0.dtype, x0.device);
        Tensor t = ShiftedTimesteps(rawTimesteps.to(x0.device), shift);
        Tensor column = t.unsqueeze(1);
        Tensor xt = column.neg().add(1).mul(x0).add(column.mul(noise));
        Tensor target = noise.sub(x0);
        return new FlowMatchingInputs(xt.MoveToOuterDisposeScope(), t.MoveToOuterDisposeScope(),
            noise.MoveToOuterDisposeScope(), target.MoveToOuterDisposeScope());
    }
}

/// <summary>The flow-matching tensors of one pack. Owns them.</summary>
/// <param name="NoisyLatents">[N, D] x_t = (1 − t)·x0 + t·ε, the <c>vae2llm</c> input.</param>
/// <param name="Timesteps">[N] shifted t, the <c>time_embedder</c> input (0 for clean tokens).</param>
/// <param name="Noise">[N, D] ε.</param>
/// <param name="Target">[N, D] ε − x0 for every token; select rows with t &gt; 0 for the MSE.</param>
public sealed record FlowMatchingInputs(Tensor NoisyLatents, Tensor Timesteps, Tensor Noise, Tensor Target) : IDisposable
{
    /// <summary>[N] bool, the tokens that carry an MSE target (the reference's <c>has_mse = t &gt; 0</c>).</summary>
    /// <returns>A new mask; the caller owns it.</returns>
    public Tensor HasTarget() => Timesteps.gt(0);

    /// <inheritdoc />
    public void Dispose()
    {
        NoisyLatents.Dispose();
        Timesteps.Dispose();
        Noise.Dispose();
        Target.Dispose();
    }
}
