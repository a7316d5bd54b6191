namespace Bagel.Training.Optimization;

/// <summary>
/// Skips steps whose loss or gradient norm is NaN or infinite, counts them, and stops the run once
/// <see cref="MaxConsecutive"/> steps in a row were skipped (a run that only produces NaN is broken, not unlucky).
/// </summary>
public sealed class NonFiniteStepGuard
{
    /// <summary>Default <see cref="MaxConsecutive"/>: 10 skipped steps in a row stop the run.</summary>
    public const int DefaultMaxConsecutive = 10;

    /// <summary>Creates the guard; <paramref name="maxConsecutive"/> skipped steps in a row throw.</summary>
    public NonFiniteStepGuard(int maxConsecutive = DefaultMaxConsecutive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxConsecutive);
        MaxConsecutive = maxConsecutive;
    }

    /// <summary>Skipped steps in a row that stop the run.</summary>
    public int MaxConsecutive { get; }

    /// <summary>Steps skipped so far (saved in the train state).</summary>
    public long TotalSkipped { get; private set; }

    /// <summary>Steps skipped in a row up to now.</summary>
    public int ConsecutiveSkipped { get; private set; }

    /// <summary>
    /// Returns true when step <paramref name="step"/> must be skipped (zero the gradients, do not step the optimizer,
    /// the schedule or the EMA).
    /// </summary>
    /// <exception cref="NonFiniteLossException">After <see cref="MaxConsecutive"/> skipped steps in a row.</exception>
    public bool ShouldSkip(long step, double loss, double gradNorm)
    {
        if (double.IsFinite(loss) && double.IsFinite(gradNorm))
        {
            ConsecutiveSkipped = 0;
            return false;
        }
        TotalSkipped++;
        ConsecutiveSkipped++;
        if (ConsecutiveSkipped >= MaxConsecutive)
            throw new NonFiniteLossException(
                $"Step {step}: loss {loss} and gradient norm {gradNorm}; {ConsecutiveSkipped} steps in a row had a NaN or infinite value " +
                $"({TotalSkipped} skipped in all). The run is diverging: lower lr, raise warmup_steps or check the data.");
        return true;
    }

    /// <summary>Restores the counters from a train state.</summary>
    public void Restore(long totalSkipped, int consecutiveSkipped)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(totalSkipped);
        ArgumentOutOfRangeException.ThrowIfNegative(consecutiveSkipped);
        TotalSkipped = totalSkipped;
        ConsecutiveSkipped = consecutiveSkipped;
    }
}
