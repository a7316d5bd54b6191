using Bagel.Core.Devices;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Training.Metrics;

/// <summary>One reading of GPU memory, in MiB.</summary>
/// <param name="UsedMiB">Device-wide used memory now (total − free).</param>
/// <param name="PeakUsedMiB">The largest <paramref name="UsedMiB"/> seen by this monitor.</param>
/// <param name="TotalMiB">The device's memory.</param>
/// <param name="PeakReservedMiB">Peak used minus what was used when the monitor started (the CUDA context and other
/// processes): an estimate of torch's peak reserved cache, the reference's <c>mem_cache</c>.</param>
public sealed record DeviceMemoryReading(double UsedMiB, double PeakUsedMiB, double TotalMiB, double PeakReservedMiB);

/// <summary>
/// Samples GPU memory for the log line and the metrics (the reference logs <c>max_memory_allocated</c> and
/// <c>max_memory_reserved</c> as <c>mem_allocated</c> / <c>mem_cache</c>). On the CPU it does nothing; on CUDA it
/// reads <c>cudaMemGetInfo</c> through <see cref="CudaMemoryInfo"/>, a host call that does not wait for the device.
/// When the CUDA runtime is missing it logs one warning saying so and returns nothing afterwards.
/// </summary>
/// <remarks>Unfinished: <c>mem_allocated</c> (live tensor bytes) needs libtorch's caching-allocator statistics, which
/// neither TorchSharp 0.107 nor libtorch's C API expose; it stays 0. The CUDA path is untested here (no GPU).</remarks>
public sealed partial class DeviceMemoryMonitor
{
    private readonly CudaMemoryInfo? _cuda;
    private readonly int _device;
    private readonly double _baselineMiB;
    private double _peakMiB;

    private DeviceMemoryMonitor(CudaMemoryInfo cuda, int device)
    {
        _cuda = cuda;
        _device = device;
        _baselineMiB = _peakMiB = Read().UsedMiB;
    }

    /// <summary>A monitor for <paramref name="device"/>: null on the CPU, and null (after one warning naming what was
    /// tried) when the CUDA runtime cannot be loaded or read.</summary>
    /// <param name="device">The compute device.</param>
    /// <param name="logger">Receives the warning when GPU memory cannot be read.</param>
    /// <param name="loadRuntime">Test seam: loads the CUDA runtime (default <see cref="CudaMemoryInfo.TryLoad(out CudaMemoryInfo?, out string?)"/>).</param>
    /// <returns>The monitor, or null when there is nothing to monitor.</returns>
    public static DeviceMemoryMonitor? Create(torch.Device device, ILogger? logger, Func<(CudaMemoryInfo? Info, string? Problem)>? loadRuntime = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.type != DeviceType.CUDA) return null;
        (CudaMemoryInfo? info, string? problem) = loadRuntime is null ? LoadDefault() : loadRuntime();
        if (info is null)
        {
            if (logger is not null) LogUnavailable(logger, problem ?? "GPU memory is not logged: the CUDA runtime could not be loaded.");
            return null;
        }
        try
        {
            return new DeviceMemoryMonitor(info, Math.Max(0, (int)device.index));
        }
        catch (InvalidOperationException e)
        {
            if (logger is not null) LogUnavailable(logger, $"GPU memory is not logged: {e.Message}");
            return null;
        }
    }

    private static (CudaMemoryInfo?, string?) LoadDefault() =>
        CudaMemoryInfo.TryLoad(out CudaMemoryInfo? info, out string? problem) ? (info, null) : (null, problem);

    /// <summary>Reads the device's memory now and updates the peak.</summary>
    public DeviceMemoryReading Sample()
    {
        DeviceMemoryReading now = Read();
        _peakMiB = Math.Max(_peakMiB, now.UsedMiB);
        return now with { PeakUsedMiB = _peakMiB, PeakReservedMiB = Math.Max(0, _peakMiB - _baselineMiB) };
    }

    private DeviceMemoryReading Read()
    {
        (long free, long total) = _cuda!.MemGetInfo(_device);
        const double MiB = 1024.0 * 1024.0;
        double used = (total - free) / MiB;
        return new DeviceMemoryReading(used, used, total / MiB, 0);
    }

    /// <summary>The log line's memory part: <c>GPU Mem: used 1234 MB, peak 2345 MB of 81559 MB, </c>.</summary>
    public static string FormatForLogLine(DeviceMemoryReading reading)
    {
        ArgumentNullException.ThrowIfNull(reading);
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"GPU Mem: used {reading.UsedMiB:F0} MB, peak {reading.PeakUsedMiB:F0} MB of {reading.TotalMiB:F0} MB, ");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Problem}")]
    private static partial void LogUnavailable(ILogger logger, string problem);
}
