namespace Bagel.Training.Metrics;

/// <summary>
/// Accumulates tokens and squared sample lengths between log lines and turns them into the reference's speed figures
/// (training.md 5.6): <c>flops = 6·N_dense·tokens + 12·head_dim·heads·layers·Σ sample_len²</c>.
/// </summary>
public sealed class ThroughputWindow
{
    /// <summary>The reference floors elapsed time at 1 µs so the first window does not divide by zero.</summary>
    private const double MinElapsedSeconds = 1e-6;

    private readonly Qwen2FlopConfig _config;
    private readonly double _peakTflopsPerDevice;
    private readonly int _worldSize;

    /// <summary>Creates the window. <paramref name="peakTflopsPerDevice"/> is measured or looked up by the caller (0 = unknown).</summary>
    public ThroughputWindow(Qwen2FlopConfig config, double peakTflopsPerDevice, int worldSize = 1)
    {
        _config = config ?? throw new ArgumentNullException(nameof(config));
        ArgumentOutOfRangeException.ThrowIfNegative(peakTflopsPerDevice);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(worldSize);
        _peakTflopsPerDevice = peakTflopsPerDevice;
        _worldSize = worldSize;
    }

    /// <summary>Tokens added since the last <see cref="Reset"/>.</summary>
    public double Tokens { get; private set; }

    /// <summary>Σ sample_len² since the last <see cref="Reset"/>.</summary>
    public double SquaredSampleLengths { get; private set; }

    /// <summary>Adds one packed micro-batch: its sequence length and each sample's length (pass the padding entry too to copy the reference's flex-mode quirk).</summary>
    public void Add(long sequenceLength, IEnumerable<int> sampleLengths)
    {
        ArgumentNullException.ThrowIfNull(sampleLengths);
        Tokens += sequenceLength;
        foreach (int length in sampleLengths) SquaredSampleLengths += (double)length * length;
    }

    /// <summary>The figures for a window of <paramref name="logEvery"/> steps that took <paramref name="elapsed"/>.</summary>
    public ThroughputReport Report(TimeSpan elapsed, int logEvery)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(logEvery);
        double seconds = Math.Max(elapsed.TotalSeconds, MinElapsedSeconds);
        double flops = _config.DenseTokenFactor * Tokens + _config.AttentionFactor * SquaredSampleLengths;
        double actualTflops = flops / seconds / 1e12;
        double peakTotal = _peakTflopsPerDevice * _worldSize;
        return new ThroughputReport(logEvery / seconds, Tokens / seconds, Tokens / logEvery, actualTflops,
            peakTotal > 0 ? actualTflops / peakTotal : 0.0);
    }

    /// <summary>Starts a new window.</summary>
    public void Reset()
    {
        Tokens = 0;
        SquaredSampleLengths = 0;
    }
}
