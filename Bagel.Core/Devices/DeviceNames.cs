using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using TorchSharp;

namespace Bagel.Core.Devices;

/// <summary>
/// Parses device names as the reference's command line and PyTorch write them: <c>cpu</c>, <c>cuda</c> (the current
/// CUDA device) and <c>cuda:N</c>. Matching ignores case and surrounding white space. Parsing is pure: it does not
/// load the native backend or check that the device exists (<see cref="ComputeOptions.Apply"/> does that).
/// </summary>
public static class DeviceNames
{
    /// <summary>The CPU device name (the default everywhere in Bagel.NET).</summary>
    public const string Cpu = "cpu";

    /// <summary>The CUDA device name; <c>cuda:N</c> selects device N.</summary>
    public const string Cuda = "cuda";

    /// <summary>The accepted forms, for error messages.</summary>
    public const string AcceptedForms = "'cpu', 'cuda', 'cuda:N' (N = 0, 1, ...)";

    /// <summary>Parses <paramref name="name"/> into a TorchSharp device.</summary>
    /// <param name="name">The device name, e.g. <c>cuda:1</c>.</param>
    /// <returns>The device; <c>cuda</c> gives index -1 (the current CUDA device), like PyTorch.</returns>
    /// <exception cref="ComputeSettingException">The name is not one of the accepted forms.</exception>
    public static torch.Device Parse(string? name)
    {
        if (TryParse(name, out torch.Device? device)) return device;
        throw new ComputeSettingException("Device",
            $"Unknown device '{name}'. Accepted: {AcceptedForms}.");
    }

    /// <summary>Parses <paramref name="name"/> without throwing.</summary>
    /// <param name="name">The device name.</param>
    /// <param name="device">The device when the name is valid.</param>
    /// <returns>Whether the name is valid.</returns>
    public static bool TryParse(string? name, [NotNullWhen(true)] out torch.Device? device)
    {
        device = null;
        if (string.IsNullOrWhiteSpace(name)) return false;
        string text = name.Trim().ToLowerInvariant();
        if (text == Cpu)
        {
            device = new torch.Device(DeviceType.CPU);
            return true;
        }
        if (text == Cuda)
        {
            device = new torch.Device(DeviceType.CUDA);
            return true;
        }
        const string cudaPrefix = Cuda + ":";
        if (text.StartsWith(cudaPrefix, StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(cudaPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int index))
        {
            device = new torch.Device(DeviceType.CUDA, index);
            return true;
        }
        return false;
    }

    /// <summary>Writes a device in the canonical form <see cref="Parse"/> accepts (<c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>).</summary>
    /// <param name="device">The device.</param>
    /// <returns>The canonical name.</returns>
    public static string Format(torch.Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return device.type switch
        {
            DeviceType.CPU => Cpu,
            DeviceType.CUDA => device.index < 0 ? Cuda : $"{Cuda}:{device.index.ToString(CultureInfo.InvariantCulture)}",
            _ => device.ToString(),
        };
    }
}
