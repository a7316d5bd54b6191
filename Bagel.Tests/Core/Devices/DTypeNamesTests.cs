using Bagel.Core.Devices;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Devices;

public sealed class DTypeNamesTests
{
    [Theory]
    [InlineData("float32", ScalarType.Float32)]
    [InlineData("fp32", ScalarType.Float32)]
    [InlineData("F32", ScalarType.Float32)]
    [InlineData("bfloat16", ScalarType.BFloat16)]
    [InlineData("bf16", ScalarType.BFloat16)]
    [InlineData("torch.bfloat16", ScalarType.BFloat16)]
    [InlineData("float16", ScalarType.Float16)]
    [InlineData("fp16", ScalarType.Float16)]
    public void ParsesAcceptedNames(string name, ScalarType expected) => Assert.Equal(expected, DTypeNames.Parse(name));

    [Theory]
    [InlineData("int8")]
    [InlineData("float64")]
    [InlineData("b16")]
    [InlineData(null)]
    public void RejectsOtherNamesNamingTheValueAndTheAcceptedOnes(string? name)
    {
        var ex = Assert.Throws<ComputeSettingException>(() => DTypeNames.Parse(name));
        Assert.Equal("DType", ex.Setting);
        Assert.Contains($"'{name}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'bfloat16' (also 'bf16')", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FormatGivesCanonicalNames()
    {
        Assert.Equal("bfloat16", DTypeNames.Format(DTypeNames.Parse("bf16")));
        Assert.Throws<ComputeSettingException>(() => DTypeNames.Format(ScalarType.Int64));
    }
}
