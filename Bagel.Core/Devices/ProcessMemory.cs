using System.Globalization;
using Bagel.Core.Distributed;

namespace Bagel.Core.Devices;

/// <summary>One reading of a process's resident memory.</summary>
/// <param name="ResidentBytes">The current resident set size (Linux <c>VmRSS</c>).</param>
/// <param name="PeakResidentBytes">The peak resident set size since the process started or the peak was last reset
/// (Linux <c>VmHWM</c>).</param>
public readonly record struct ProcessMemorySnapshot(long ResidentBytes, long PeakResidentBytes)
{
    /// <summary><see cref="ResidentBytes"/> in MiB.</summary>
    public double ResidentMiB => ResidentBytes / 1048576.0;

    /// <summary><see cref="PeakResidentBytes"/> in MiB.</summary>
    public double PeakMiB => PeakResidentBytes / 1048576.0;

    /// <summary>"rss 123.4 MiB, peak 234.5 MiB".</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"rss {ResidentMiB:F1} MiB, peak {PeakMiB:F1} MiB");
}

/// <summary>
/// This process's resident memory (host RAM; CUDA memory is <see cref="CudaMemoryInfo"/>'s), read from
/// <c>/proc/self/status</c> on Linux, and <see cref="System.Diagnostics.Process"/>'s working set elsewhere. Each rank of
/// a multi-process run reads its own; <see cref="GatherPeaks"/> collects every rank's peak.
/// </summary>
public static class ProcessMemory
{
    private const string StatusFile = "/proc/self/status";

    /// <summary>The current resident set size in bytes (<c>VmRSS</c>).</summary>
    public static long ResidentBytes() => Snapshot().ResidentBytes;

    /// <summary>The peak resident set size in bytes (<c>VmHWM</c>, the high-water mark).</summary>
    public static long PeakResidentBytes() => Snapshot().PeakResidentBytes;

    /// <summary>Reads the current and the peak resident set size together.</summary>
    /// <returns>The reading.</returns>
    public static ProcessMemorySnapshot Snapshot()
    {
        if (File.Exists(StatusFile))
        {
            long rss = -1, peak = -1;
            foreach (string line in File.ReadLines(StatusFile))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kilobytes(line) * 1024;
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) peak = Kilobytes(line) * 1024;
            }
            if (rss >= 0 && peak >= 0) return new ProcessMemorySnapshot(rss, peak);
        }
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return new ProcessMemorySnapshot(process.WorkingSet64, process.PeakWorkingSet64);
    }

    /// <summary>
    /// Resets the peak (<c>VmHWM</c>) to the current resident size, so that a later <see cref="PeakResidentBytes"/>
    /// measures one phase (Linux: writes 5 to <c>/proc/self/clear_refs</c>).
    /// </summary>
    /// <returns>Whether the peak was reset (false where the kernel or platform does not allow it).</returns>
    public static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Every rank's peak resident set size in bytes, indexed by rank (a collective: every rank of
    /// <paramref name="group"/> calls it).
    /// </summary>
    /// <param name="group">The ranks to collect from.</param>
    /// <param name="device">Where the group's tensors live (null: CPU; a CUDA device for NCCL).</param>
    /// <returns>One peak per rank.</returns>
    public static long[] GatherPeaks(IProcessGroup group, TorchSharp.torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(group);
        double[] values = new double[group.WorldSize];
        values[group.Rank] = PeakResidentBytes(); // exact in a double up to 8 PiB
        return [.. group.AllReduce(values, ReduceOp.Sum, device).Select(v => (long)v)];
    }

    private static long Kilobytes(string line)
    {
        string value = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim().Split(' ')[0];
        return long.Parse(value, CultureInfo.InvariantCulture);
    }
}
