using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Core.Devices;

/// <summary>The compute settings in effect after <see cref="ComputeOptions.Apply"/>.</summary>
/// <param name="Device">The device tensors and modules go to.</param>
/// <param name="DType">The parameter dtype.</param>
/// <param name="CpuThreads">torch's intra-op thread count now in effect.</param>
/// <param name="InteropThreads">torch's inter-op thread count now in effect.</param>
public sealed record ComputeSelection(torch.Device Device, ScalarType DType, int CpuThreads, int InteropThreads);
