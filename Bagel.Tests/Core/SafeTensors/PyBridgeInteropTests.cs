using Bagel.Core.Native;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Tests.Core.StateDicts;
using TorchSharp;
using TorchSharp.PyBridge;
using PyBridgeSafetensors = TorchSharp.PyBridge.Safetensors;

namespace Bagel.Tests.Core.SafeTensors;

/// <summary>
/// Interop with TorchSharp.PyBridge 1.4.4's safetensors code (Safetensors.LoadStateDict / SaveStateDict), in both
/// directions. PyBridge reads and writes all four dtypes tested here (F32, F16, BF16, I64).
/// </summary>
public sealed class PyBridgeInteropTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public PyBridgeInteropTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _folder.Dispose();

    public static TheoryData<SafeTensorDType> InteropDTypes() => [SafeTensorDType.F32, SafeTensorDType.F16, SafeTensorDType.BF16, SafeTensorDType.I64];

    [Theory]
    [MemberData(nameof(InteropDTypes))]
    public void FilesWeWriteLoadThroughPyBridgeWithIdenticalBytes(SafeTensorDType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var weight = SampleTensors.Make(dtype, 3, 4);
        var bias = SampleTensors.Make(dtype, 4);
        string path = _folder.File("ours.safetensors");
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("layer.weight", weight), PendingTensor.From("layer.bias", bias)],
            new Dictionary<string, string> { ["format"] = "pt" }, cancellationToken: TestContext.Current.CancellationToken);

        Dictionary<string, torch.Tensor> loaded = PyBridgeSafetensors.LoadStateDict(path);

        Assert.Equal(["layer.bias", "layer.weight"], loaded.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(dtype.ToScalarType(), loaded["layer.weight"].dtype);
        Assert.Equal([3L, 4L], loaded["layer.weight"].shape);
        Assert.Equal(SampleTensors.Bytes(weight), SampleTensors.Bytes(loaded["layer.weight"]));
        Assert.Equal(SampleTensors.Bytes(bias), SampleTensors.Bytes(loaded["layer.bias"]));
    }

    [Theory]
    [MemberData(nameof(InteropDTypes))]
    public void FilesPyBridgeWritesLoadThroughOursWithIdenticalBytes(SafeTensorDType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var weight = SampleTensors.Make(dtype, 2, 5);
        var scalar = SampleTensors.Make(dtype);
        string path = _folder.File("pybridge.safetensors");
        PyBridgeSafetensors.SaveStateDict(path, new Dictionary<string, torch.Tensor> { ["w"] = weight, ["s"] = scalar });

        using var reader = SafeTensorsReader.Open(path);

        Assert.Equal(dtype, reader.GetInfo("w").DType);
        Assert.Equal([2L, 5L], reader.GetInfo("w").Shape);
        Assert.Equal(SampleTensors.Bytes(weight), reader.GetBytes("w").ToArray());
        Assert.Equal(SampleTensors.Bytes(scalar), reader.GetBytes("s").ToArray());
        Assert.Empty(reader.Metadata);
    }

    [Fact]
    public void ModuleSavedByOurSaverLoadsThroughPyBridgeLoadSafetensors()
    {
        using var scope = torch.NewDisposeScope();
        var source = TinyModel.Create(seed: 21);
        var target = TinyModel.Create(seed: 22);
        string path = _folder.File("ours-module.safetensors");
        StateDictSaver.SaveFile(source, path, new StateDictSaveOptions { Metadata = new Dictionary<string, string> { ["format"] = "pt" } },
            cancellationToken: TestContext.Current.CancellationToken);

        target.load_safetensors(path, strict: true);

        TinyModel.AssertSameState(source, target);
    }

    [Fact]
    public void ModuleSavedByPyBridgeLoadsThroughOurLoader()
    {
        using var scope = torch.NewDisposeScope();
        var source = TinyModel.Create(seed: 23);
        var target = TinyModel.Create(seed: 24);
        string path = _folder.File("pybridge-module.safetensors");
        source.save_safetensors(path);

        StateDictLoadReport report = StateDictLoader.Load(target, path, cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(report.IsExactMatch);
        TinyModel.AssertSameState(source, target);
    }
}
