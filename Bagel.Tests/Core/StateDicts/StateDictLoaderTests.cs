using Bagel.Core.Native;
using Bagel.Core.SafeTensors;
using Bagel.Core.StateDicts;
using Bagel.Tests.Core.SafeTensors;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Bagel.Tests.Core.StateDicts;

public sealed class StateDictLoaderTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public StateDictLoaderTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _folder.Dispose();

    private string SaveTensors(params (string Name, torch.Tensor Tensor)[] tensors)
    {
        string path = _folder.File("source.safetensors");
        SafeTensorsWriter.WriteFile(path, tensors.Select(t => PendingTensor.From(t.Name, t.Tensor)));
        return path;
    }

    [Fact]
    public void MatchingFileLoadsIntoTheModulesOwnParameters()
    {
        using var scope = torch.NewDisposeScope();
        var source = TinyModel.Create(seed: 1);
        var target = TinyModel.Create(seed: 2);
        string path = _folder.File("tiny.safetensors");
        StateDictSaver.SaveFile(source, path, cancellationToken: TestContext.Current.CancellationToken);
        torch.Tensor weightBefore = target.state_dict()["fc1.weight"];

        StateDictLoadReport report = StateDictLoader.Load(target, path, cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(report.IsExactMatch);
        Assert.Equal(source.state_dict().Count, report.LoadedKeys.Count);
        TinyModel.AssertSameState(source, target);
        Assert.Same(weightBefore, target.state_dict()["fc1.weight"]);
        Assert.True(target.state_dict()["fc1.weight"].requires_grad);
    }

    [Fact]
    public void MissingUnexpectedAndMisshapenKeysAreReportedTogetherAndNothingIsLoaded()
    {
        using var scope = torch.NewDisposeScope();
        var target = TinyModel.Create(seed: 2);
        var pristine = TinyModel.Create(seed: 2);
        Dictionary<string, torch.Tensor> state = target.state_dict();
        // Everything but fc2.*, fc1.bias with the wrong shape, and one extra key.
        var tensors = state.Where(p => !p.Key.StartsWith("fc2.", StringComparison.Ordinal) && p.Key != "fc1.bias")
            .Select(p => (p.Key, torch.zeros_like(p.Value)))
            .Append(("fc1.bias", torch.zeros(5)))
            .Append(("extra.scale", torch.ones(1)))
            .ToArray();
        string path = SaveTensors(tensors);

        var ex = Assert.Throws<StateDictMismatchException>(() => StateDictLoader.Load(target, path, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(["fc2.bias", "fc2.weight"], ex.MissingKeys);
        Assert.Equal(["extra.scale"], ex.UnexpectedKeys);
        StateDictShapeMismatch bad = Assert.Single(ex.Misshapen);
        Assert.Equal("fc1.bias", bad.ModuleKey);
        Assert.Equal([5L], bad.SourceShape);
        Assert.Equal([4L], bad.ModuleShape);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("2 missing, 1 unexpected, 1 misshapen", ex.Message, StringComparison.Ordinal);
        Assert.Contains("fc2.weight", ex.Message, StringComparison.Ordinal);
        Assert.Contains("extra.scale", ex.Message, StringComparison.Ordinal);
        Assert.Contains("fc1.bias: file [5] vs module [4]", ex.Message, StringComparison.Ordinal);
        TinyModel.AssertSameState(pristine, target);
    }

    [Fact]
    public void NonStrictLoadsWhatMatchesAndReturnsAndLogsTheRest()
    {
        using var scope = torch.NewDisposeScope();
        var target = TinyModel.Create(seed: 2);
        var weight = torch.full(4, 3, 0.25f);
        string path = SaveTensors(("fc1.weight", weight), ("fc2.bias", torch.zeros(7)), ("stray", torch.ones(2)));
        var logger = new ListLogger();

        StateDictLoadReport report = StateDictLoader.Load(target, path, new StateDictLoadOptions { Strict = false, Logger = logger }, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(["fc1.weight"], report.LoadedKeys);
        Assert.Equal(["stray"], report.UnexpectedKeys);
        Assert.Equal("fc2.bias", Assert.Single(report.Misshapen).ModuleKey);
        Assert.Contains("fc1.bias", report.MissingKeys);
        Assert.DoesNotContain("fc1.weight", report.MissingKeys);
        Assert.True(target.state_dict()["fc1.weight"].Equals(weight));
        (LogLevel level, string message) = Assert.Single(logger.Entries);
        Assert.Equal(LogLevel.Warning, level);
        Assert.Contains("stray", message, StringComparison.Ordinal);
        Assert.Contains(path, message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeyMapRenamesAndIgnoresSourceKeys()
    {
        using var scope = torch.NewDisposeScope();
        var source = TinyModel.Create(seed: 5);
        var target = TinyModel.Create(seed: 6);
        var tensors = source.state_dict().Select(p => ("model." + p.Key, p.Value)).Append(("lm_head.weight", torch.ones(3))).ToArray();
        string path = SaveTensors(tensors);

        StateDictLoadReport report = StateDictLoader.Load(target, path, new StateDictLoadOptions
        {
            KeyMap = key => key.StartsWith("model.", StringComparison.Ordinal) ? key["model.".Length..] : null,
        }, cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(report.IsExactMatch);
        Assert.Equal(["lm_head.weight"], report.IgnoredKeys);
        TinyModel.AssertSameState(source, target);
    }

    [Fact]
    public void KeyMapSendingTwoKeysToOneIsRefused()
    {
        using var scope = torch.NewDisposeScope();
        var target = TinyModel.Create(seed: 2);
        string path = SaveTensors(("a.fc1.bias", torch.zeros(4)), ("b.fc1.bias", torch.zeros(4)));

        var ex = Assert.Throws<InvalidOperationException>(() => StateDictLoader.Load(target, path,
            new StateDictLoadOptions { Strict = false, KeyMap = key => key[2..] }, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("'a.fc1.bias' and 'b.fc1.bias'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bf16FileLoadsIntoAFloat32Module()
    {
        using var scope = torch.NewDisposeScope();
        var source = TinyModel.Create(seed: 3);
        var target = TinyModel.Create(seed: 4);
        string path = _folder.File("bf16.safetensors");
        StateDictSaver.SaveFile(source, path, new StateDictSaveOptions { FloatingPointDType = SafeTensorDType.BF16 }, cancellationToken: TestContext.Current.CancellationToken);
        using (var reader = SafeTensorsReader.Open(path))
        {
            Assert.Equal(SafeTensorDType.BF16, reader.GetInfo("fc1.weight").DType);
            Assert.Equal(SafeTensorDType.I64, reader.GetInfo("norm.num_batches_tracked").DType);
        }

        StateDictLoader.Load(target, path, cancellationToken: TestContext.Current.CancellationToken);

        foreach ((string key, torch.Tensor expected) in source.state_dict())
        {
            torch.Tensor actual = target.state_dict()[key];
            Assert.Equal(expected.dtype, actual.dtype);
            var rounded = expected.is_floating_point() ? expected.to(torch.ScalarType.BFloat16).to(expected.dtype) : expected;
            Assert.True(actual.Equals(rounded), $"'{key}' differs");
        }
    }

    [Fact]
    public void Float32FileLoadsIntoABf16Module()
    {
        using var scope = torch.NewDisposeScope();
        var source = TinyModel.Create(seed: 3);
        var target = TinyModel.Create(seed: 4);
        target.to(torch.ScalarType.BFloat16);
        string path = _folder.File("f32.safetensors");
        StateDictSaver.SaveFile(source, path, cancellationToken: TestContext.Current.CancellationToken);

        StateDictLoader.Load(target, path, cancellationToken: TestContext.Current.CancellationToken);

        torch.Tensor weight = target.state_dict()["fc2.weight"];
        Assert.Equal(torch.ScalarType.BFloat16, weight.dtype);
        Assert.True(weight.Equals(source.state_dict()["fc2.weight"].to(torch.ScalarType.BFloat16)));
    }

    [Fact]
    public void ShardedCheckpointFolderLoads()
    {
        using var scope = torch.NewDisposeScope();
        var source = TinyModel.Create(seed: 8);
        var target = TinyModel.Create(seed: 9);
        string index = StateDictSaver.SaveCheckpoint(source, _folder.Path, new SafeTensorsCheckpointOptions { MaxShardBytes = 40 }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.EndsWith("model.safetensors.index.json", index, StringComparison.Ordinal);
        Assert.True(_folder.Entries().Count(e => e.EndsWith(".safetensors", StringComparison.Ordinal)) > 2);

        StateDictLoadReport report = StateDictLoader.Load(target, _folder.Path, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(index, report.Source);
        TinyModel.AssertSameState(source, target);
    }
}
