using System.Runtime.CompilerServices;
using TorchSharp;

namespace Bagel.Training.Loop;

/// <summary>
/// The training step's deliberate reads of device values on the host (each one waits for the device's queue to drain
/// on CUDA). Every such read in the loop goes through here, so a test can count them: docs/precision.md lists them.
/// </summary>
internal static class HostSync
{
    /// <summary>Test seam: when a test sets a box for its async flow, every read adds one to it.</summary>
    internal static readonly AsyncLocal<StrongBox<long>?> Counter = new();

    /// <summary>Copies <paramref name="values"/> (a 1-D tensor) to the host as doubles: one synchronisation.</summary>
    internal static double[] Read(torch.Tensor values)
    {
        Count();
        using var scope = torch.NewDisposeScope();
        return values.to(torch.ScalarType.Float64).cpu().data<double>().ToArray();
    }

    /// <summary>Counts a read made elsewhere (e.g. the gradient norm's <c>item</c>).</summary>
    internal static void Count()
    {
        if (Counter.Value is { } box) box.Value++;
    }
}
