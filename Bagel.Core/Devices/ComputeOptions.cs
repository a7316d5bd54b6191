using Bagel.Core.Logging;
using Bagel.Core.Native;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Devices;

/// <summary>
/// Where and in which dtype Bagel.NET computes, and how many CPU threads torch uses. Values are strings so they bind
/// from configuration and the command line; <see cref="Validate"/> reports every bad value at once and
/// <see cref="Apply"/> makes them take effect.
/// </summary>
/// <remarks>
/// <para><see cref="DType"/> is the <em>parameter</em> dtype. The reference keeps fp32 master weights and computes in
/// bf16 under FSDP mixed precision (model.md §10); Bagel.Training decides how it maps that onto this setting.</para>
/// <para>bf16 and fp16 on the CPU are allowed: libtorch runs them (usually slower than fp32, and fp16 lacks some CPU
/// kernels). They are useful to reproduce the reference's bf16 rounding on a machine without a GPU.</para>
/// <para>Pixel tensors and packed-batch float fields stay fp32 whatever this says; the model casts them.</para>
/// </remarks>
public sealed class ComputeOptions
{
    /// <summary>The device name: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>. Default <c>cpu</c>.</summary>
    public string Device { get; set; } = DeviceNames.Cpu;

    /// <summary>The parameter dtype name (see <see cref="DTypeNames"/>). Default <c>float32</c>.</summary>
    public string DType { get; set; } = DTypeNames.Float32;

    /// <summary>torch's intra-op CPU thread count (<c>torch.set_num_threads</c>); null keeps libtorch's default
    /// (the number of physical cores). Default null.</summary>
    public int? CpuThreads { get; set; }

    /// <summary>torch's inter-op thread count (<c>torch.set_num_interop_threads</c>); null keeps libtorch's default.
    /// libtorch accepts a change only before any inter-op work has run. Default null.</summary>
    public int? InteropThreads { get; set; }

    /// <summary>Checks every setting without touching the native backend.</summary>
    /// <returns>One message per bad setting; empty when all are valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        List<string> errors = [];
        if (!DeviceNames.TryParse(Device, out _))
            errors.Add($"Device: unknown device '{Device}'. Accepted: {DeviceNames.AcceptedForms}.");
        if (!DTypeNames.TryParse(DType, out _))
            errors.Add($"DType: unknown dtype '{DType}'. Accepted: {DTypeNames.AcceptedNames}.");
        if (CpuThreads is < 1)
            errors.Add($"CpuThreads: {CpuThreads} is not a thread count. Use a value >= 1, or leave it unset for libtorch's default.");
        if (InteropThreads is < 1)
            errors.Add($"InteropThreads: {InteropThreads} is not a thread count. Use a value >= 1, or leave it unset for libtorch's default.");
        return errors;
    }

    /// <summary>Throws one exception listing every bad setting, if any.</summary>
    /// <exception cref="ComputeSettingException">At least one setting is invalid.</exception>
    public void ThrowIfInvalid()
    {
        IReadOnlyList<string> errors = Validate();
        if (errors.Count == 0) return;
        string settings = string.Join(", ", errors.Select(e => e[..e.IndexOf(':', StringComparison.Ordinal)]));
        throw new ComputeSettingException(settings, "Invalid compute options:\n  " + string.Join("\n  ", errors));
    }

    /// <summary>
    /// Validates, loads the native backend for the device (CUDA included), checks that the device exists, and sets
    /// torch's thread counts.
    /// </summary>
    /// <param name="logger">Receives one line describing the result; null logs nothing.</param>
    /// <returns>The resolved device, dtype and thread counts now in effect.</returns>
    /// <exception cref="ComputeSettingException">A setting is invalid, CUDA is unavailable, the CUDA index does not
    /// exist, or libtorch refused the inter-op thread count.</exception>
    public ComputeSelection Apply(ILogger? logger = null)
    {
        ThrowIfInvalid();
        torch.Device device = DeviceNames.Parse(Device);
        ScalarType dtype = DTypeNames.Parse(DType);
        try
        {
            TorchRuntime.EnsureLoaded(device);
        }
        catch (TorchNativeLoadException ex) when (device.type == DeviceType.CUDA)
        {
            throw new ComputeSettingException(nameof(Device), $"Device '{Device}' is unavailable. {ex.Message}", ex);
        }
        if (device.type == DeviceType.CUDA)
            CheckCudaDevice(device);

        if (CpuThreads is int threads && torch.get_num_threads() != threads)
            torch.set_num_threads(threads);
        if (InteropThreads is int interop && torch.get_num_interop_threads() != interop)
            SetInteropThreads(interop);

        var selection = new ComputeSelection(device, dtype, torch.get_num_threads(), torch.get_num_interop_threads());
        if (logger is not null)
            CoreLog.ComputeApplied(logger, DeviceNames.Format(device), DTypeNames.Format(dtype), selection.CpuThreads, selection.InteropThreads);
        if (logger is not null && device.type == DeviceType.CPU && dtype != ScalarType.Float32)
            CoreLog.ReducedPrecisionOnCpu(logger, DTypeNames.Format(dtype));
        return selection;
    }

    private void CheckCudaDevice(torch.Device device)
    {
        if (!torch.cuda.is_available())
            throw new ComputeSettingException(nameof(Device),
                $"Device '{Device}' was requested, but torch reports no usable CUDA device. Check the NVIDIA driver " +
                "(nvidia-smi), build with -p:BagelTorchBackend=cuda, or choose 'cpu'.");
        int count = torch.cuda.device_count();
        if (device.index >= count)
            throw new ComputeSettingException(nameof(Device),
                $"Device '{Device}' was requested, but this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1}).");
    }

    private static void SetInteropThreads(int interop)
    {
        try
        {
            torch.set_num_interop_threads(interop);
        }
        catch (Exception ex) when (ex is System.Runtime.InteropServices.ExternalException or InvalidOperationException)
        {
            throw new ComputeSettingException(nameof(InteropThreads),
                $"libtorch refused InteropThreads = {interop} (it is already {torch.get_num_interop_threads()}): the inter-op " +
                "thread count can only change before any inter-op work has run. Apply the compute options first thing in " +
                "the process, or leave InteropThreads unset.", ex);
        }
    }
}
