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
