using Bagel.Core.Devices;
using TorchSharp;

namespace Bagel.Tests.Core.Devices;

public sealed class DeviceNamesTests
{
    [Theory]
    [InlineData("cpu", DeviceType.CPU, -1)]
    [InlineData(" CPU ", DeviceType.CPU, -1)]
    [InlineData("cuda", DeviceType.CUDA, -1)]
    [InlineData("cuda:0", DeviceType.CUDA, 0)]
    [InlineData("CUDA:3", DeviceType.CUDA, 3)]
    public void ParsesAcceptedForms(string name, DeviceType type, int index)
    {
        torch.Device device = DeviceNames.Parse(name);
        Assert.Equal(type, device.type);
        Assert.Equal(index, device.index);
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    [InlineData("cpu:0")]
    [InlineData("")]
    public void RejectsOtherNamesNamingTheValueAndTheAcceptedForms(string name)
    {
        var ex = Assert.Throws<ComputeSettingException>(() => DeviceNames.Parse(name));
        Assert.Equal("Device", ex.Setting);
        Assert.Contains($"'{name}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'cuda:N'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    [InlineData("cuda:2")]
    public void FormatRoundTrips(string name) => Assert.Equal(name, DeviceNames.Format(DeviceNames.Parse(name)));
}
