namespace Bagel.Training.Metrics;

/// <summary>Speed figures of one log window, as the reference computes them.</summary>
/// <param name="StepsPerSec"><c>log_every / elapsed</c>.</param>
/// <param name="TokensPerSec">Tokens of the window per second.</param>
/// <param name="TokensPerStep">Tokens of the window / <c>log_every</c>.</param>
/// <param name="ActualTflops">Estimated FLOPs of the window / elapsed / 1e12.</param>
/// <param name="Mfu">ActualTflops / (peak TFLOP/s · world size); 0 when the peak is unknown.</param>
public sealed record ThroughputReport(double StepsPerSec, double TokensPerSec, double TokensPerStep, double ActualTflops, double Mfu);
