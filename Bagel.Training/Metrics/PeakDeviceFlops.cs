namespace Bagel.Training.Metrics;

/// <summary>
/// The reference's table of peak bf16 TFLOP/s by GPU name (upper-cased substring match, in this order); unknown names
/// give 0, which logs MFU as 0. A caller that measured its device passes that figure instead.
/// </summary>
public static class PeakDeviceFlops
{
    /// <summary>Name fragments and TFLOP/s, in the order the reference checks them.</summary>
    public static IReadOnlyList<(string[] Names, double Tflops)> Table { get; } =
    [
        (["MI300X"], 1336.0),
        (["H100", "H800", "H200"], 989.0),
        (["A100", "A800"], 312.0),
        (["L40"], 181.05),
        (["L20"], 119.5),
        (["H20"], 148.0),
        (["910B"], 354.0),
        (["RTX 3070 TI"], 21.75),
    ];

    /// <summary>Peak TFLOP/s for <paramref name="deviceName"/>, or 0 when it is not in the table.</summary>
    public static double DetectTflops(string? deviceName)
    {
        if (string.IsNullOrWhiteSpace(deviceName)) return 0.0;
        string upper = deviceName.ToUpperInvariant();
        foreach ((string[] names, double tflops) in Table)
            if (names.Any(n => upper.Contains(n, StringComparison.Ordinal))) return tflops;
        return 0.0;
    }
}
