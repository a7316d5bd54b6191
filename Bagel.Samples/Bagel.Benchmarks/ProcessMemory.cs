using System.Globalization;

namespace Bagel.Benchmarks;

/// <summary>The benchmarks' view of this process's memory figures (read by <see cref="Bagel.Core.Devices.ProcessMemory"/>).</summary>
internal static class ProcessMemory
{
    /// <summary>Current resident set size in bytes (VmRSS).</summary>
    public static long ResidentBytes() => Bagel.Core.Devices.ProcessMemory.ResidentBytes();

    /// <summary>Peak resident set size in bytes (VmHWM, the "high water mark").</summary>
    public static long PeakResidentBytes() => Bagel.Core.Devices.ProcessMemory.PeakResidentBytes();

    /// <summary>Resets the peak (VmHWM) to the current RSS (Linux: writing 5 to /proc/self/clear_refs) and returns it in MiB.</summary>
    public static double ResetPeak()
    {
        if (!Bagel.Core.Devices.ProcessMemory.TryResetPeak())
            throw new InvalidOperationException("The peak RSS could not be reset (/proc/self/clear_refs); this benchmark needs Linux.");
        return PeakMiB();
    }

    /// <summary>The peak RSS (VmHWM) in MiB.</summary>
    public static double PeakMiB() => PeakResidentBytes() / 1048576.0;

    /// <summary>Bytes as MiB with one decimal.</summary>
    public static string Mib(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) + " MiB";
}
