using Bagel.Core.Devices;
using Bagel.Tests.Core.Randomness;
using Microsoft.Extensions.Options;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Devices;

// Apply changes torch's process-wide thread count: run with the other process-global tests, alone.
[Collection(nameof(TorchGlobalRandomTests))]
public sealed class ComputeOptionsTests
{
    [Fact]
    public void DefaultsAreCpuAndFloat32()
    {
        var options = new ComputeOptions();
        Assert.Equal("cpu", options.Device);
        Assert.Equal("float32", options.DType);
        Assert.Null(options.CpuThreads);
        Assert.Null(options.InteropThreads);
        Assert.Empty(options.Validate());
    }

    [Fact]
    public void ValidateReportsEveryBadSettingAtOnce()
    {
        var options = new ComputeOptions { Device = "tpu", DType = "int4", CpuThreads = 0, InteropThreads = -2 };

        IReadOnlyList<string> errors = options.Validate();

        Assert.Equal(4, errors.Count);
        var ex = Assert.Throws<ComputeSettingException>(options.ThrowIfInvalid);
        Assert.Equal("Device, DType, CpuThreads, InteropThreads", ex.Setting);
        Assert.Contains("'tpu'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'int4'", ex.Message, StringComparison.Ordinal);
        Assert.False(new ComputeOptionsValidator().Validate(null, options).Succeeded);
    }

    [Fact]
    public void ApplySetsTheThreadCountAndResolvesTheSelection()
    {
        int before = torch.get_num_threads();
        try
        {
            ComputeSelection selection = new ComputeOptions { DType = "bf16", CpuThreads = 1 }.Apply();
            Assert.Equal(DeviceType.CPU, selection.Device.type);
            Assert.Equal(ScalarType.BFloat16, selection.DType);
            Assert.Equal(1, selection.CpuThreads);
            Assert.Equal(1, torch.get_num_threads());
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public void CudaWithoutADeviceGivesAClearError()
    {
        Bagel.Core.Native.TorchRuntime.EnsureLoaded();
        Assert.SkipWhen(torch.cuda.is_available(), "This machine has CUDA; the unavailable-device path cannot be exercised.");
        var ex = Assert.Throws<ComputeSettingException>(() => new ComputeOptions { Device = "cuda:0" }.Apply());
        Assert.Equal("Device", ex.Setting);
        Assert.Contains("cuda:0", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'cpu'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Requires", "cuda")] // .ci/gpu-check.sh runs the tests with this trait
    public void CudaIndexBeyondTheDeviceCountGivesAClearError()
    {
        Bagel.Core.Native.TorchRuntime.EnsureLoaded();
        Assert.SkipUnless(torch.cuda.is_available(), "Needs a CUDA device.");
        int count = torch.cuda.device_count();
        var ex = Assert.Throws<ComputeSettingException>(() => new ComputeOptions { Device = $"cuda:{count}" }.Apply());
        Assert.Contains($"{count} CUDA device(s)", ex.Message, StringComparison.Ordinal);
    }
}
