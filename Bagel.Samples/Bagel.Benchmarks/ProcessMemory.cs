using System.Globalization;

namespace Bagel.Benchmarks;

/// <summary>Reads this process's memory figures from /proc/self/status (Linux).</summary>
internal static class ProcessMemory
{
    /// <summary>Current resident set size in bytes (VmRSS).</summary>
    public static long ResidentBytes() => Read("VmRSS:");

    /// <summary>Peak resident set size in bytes (VmHWM, the "high water mark").</summary>
    public static long PeakResidentBytes() => Read("VmHWM:");

    /// <summary>Bytes as MiB with one decimal.</summary>
    /// <summary>Resets the peak (VmHWM) to the current RSS (Linux: writing 5 to /proc/self/clear_refs) and returns it in MiB.</summary>
    public static double ResetPeak()
    {
        File.WriteAllText("/proc/self/clear_refs", "5");
        return PeakMiB();
    }

    /// <summary>The peak RSS (VmHWM) in MiB.</summary>
    public static double PeakMiB() => PeakResidentBytes() / 1048576.0;

    public static string Mib(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) + " MiB";

    private static long Read(string field)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            string kilobytes = line[field.Length..].Trim().Split(' ')[0];
            return long.Parse(kilobytes, CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException($"/proc/self/status has no '{field}' line; this benchmark needs Linux.");
    }
}
