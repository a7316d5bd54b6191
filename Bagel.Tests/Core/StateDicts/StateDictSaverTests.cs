using Bagel.Core.Native;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Tests.Core.SafeTensors;
using TorchSharp;

namespace Bagel.Tests.Core.StateDicts;

public sealed class StateDictSaverTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public StateDictSaverTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void SavedFileHoldsEveryStateDictTensorWithMetadataAndMappedKeys()
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyModel.Create(seed: 11);
        string path = _folder.File("saved.safetensors");

        StateDictSaver.SaveFile(model, path, new StateDictSaveOptions
        {
            KeyMap = key => key == "norm.num_batches_tracked" ? null : "model." + key,
            Metadata = new Dictionary<string, string> { ["format"] = "pt" },
        }, cancellationToken: TestContext.Current.CancellationToken);

        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal("pt", reader.Metadata["format"]);
        Dictionary<string, torch.Tensor> state = model.state_dict();
        Assert.Equal(state.Keys.Where(k => k != "norm.num_batches_tracked").Select(k => "model." + k).Order(StringComparer.Ordinal),
            reader.Tensors.Select(t => t.Name));
        Assert.Equal(SampleTensors.Bytes(state["fc1.weight"]), reader.GetBytes("model.fc1.weight").ToArray());
        Assert.Equal(SampleTensors.Bytes(state["norm.running_var"]), reader.GetBytes("model.norm.running_var").ToArray());
    }

    [Fact]
    public void SavingConvertsFloatingPointTensorsOnlyAndLeavesTheModuleUntouched()
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyModel.Create(seed: 12);
        string path = _folder.File("f16.safetensors");

        StateDictSaver.SaveFile(model, path, new StateDictSaveOptions { FloatingPointDType = SafeTensorDType.F16 }, cancellationToken: TestContext.Current.CancellationToken);

        using var reader = SafeTensorsReader.Open(path);
        Assert.All(reader.Tensors.Where(t => t.Name != "norm.num_batches_tracked"), t => Assert.Equal(SafeTensorDType.F16, t.DType));
        Assert.Equal(SafeTensorDType.I64, reader.GetInfo("norm.num_batches_tracked").DType);
        Assert.Equal(torch.ScalarType.Float32, model.state_dict()["fc1.weight"].dtype);
        Assert.Equal(SampleTensors.Bytes(model.state_dict()["fc2.bias"].to(torch.ScalarType.Float16)), reader.GetBytes("fc2.bias").ToArray());
    }
}
