using Bagel.Core.Batching;
using Bagel.Core.DataStatus;
using TorchSharp;
using static TorchSharp.torch;

namespace Bagel.Tests.Core.Batching;

public sealed class PackedBatchTests : IDisposable
{
    private readonly PackedBatchExamples _examples = new();

    public void Dispose() => _examples.Dispose();

    [Fact]
    public void ValidBatchCarriesEveryFieldWithItsShapeAndDtype()
    {
        using PackedBatch batch = _examples.ValidBuilder().Build(limits: new PackedBatchLimits { MaxLatentSize = PackedBatchExamples.MaxLatentSize, VitMaxPatchesPerSide = 70 });

        Assert.Equal(24, batch.SequenceLength);
        Assert.Equal([11, 13], batch.SampleLens);
        Assert.Equal([5, 6, 6, 4, 3], batch.SplitLens);
        Assert.Equal([AttentionMode.Causal, AttentionMode.Noise, AttentionMode.Full, AttentionMode.Causal, AttentionMode.Full], batch.AttnModes);
        Assert.Equal(11L * 11 + 13 * 13, batch.SumOfSquaredSampleLengths);
        Assert.Equal(ScalarType.Int64, batch.PackedTextIds.dtype);
        Assert.Equal([24L], batch.PackedPositionIds.shape);
        VaeImageFields vae = Assert.IsType<VaeImageFields>(batch.Vae);
        Assert.Equal([2L, 3, 32, 32], vae.PaddedImages.shape);
        Assert.Equal([new LatentGrid(2, 2), new LatentGrid(1, 1)], vae.LatentShapes);
        Assert.Equal(ScalarType.Float32, vae.PackedTimesteps.dtype);
        VitImageFields vit = Assert.IsType<VitImageFields>(batch.Vit);
        Assert.Equal([4L, 588], vit.PackedVitTokens.shape);
        Assert.Equal([4L], vit.VitTokenSeqlens.data<long>().ToArray());
        TextLossFields textLoss = Assert.IsType<TextLossFields>(batch.TextLoss);
        Assert.Equal(ScalarType.Float32, textLoss.CeLossWeights.dtype);
        Assert.Equal(new SourcePosition(SourcePositionKind.VlmJsonl, [12]), batch.DataIndexes[1].Position);
    }

    [Fact]
    public void BuilderZeroPadsVaeImagesAtTheBottomRight()
    {
        using PackedBatch batch = _examples.ValidBuilder().Build();
        Tensor padded = batch.Vae!.PaddedImages;
        Assert.Equal(0.5f, padded[1, 0, 15, 15].item<float>());
        Assert.Equal(0f, padded[1, 0, 16, 0].item<float>());
        Assert.Equal(0f, padded[1, 2, 0, 16].item<float>());
        Assert.Equal(3f * 32 * 32, padded[0].sum().item<float>());
    }

    [Fact]
    public void BatchWithoutOptionalGroupsIsValidAndHasNullGroups()
    {
        using PackedBatch batch = PackedBatchExamples.TextOnlyBuilder().Build();
        Assert.Null(batch.Vae);
        Assert.Null(batch.Vit);
        Assert.Null(batch.TextLoss);
        Assert.Equal(3, batch.NamedTensors().Count());
    }

    [Fact]
    public void ToDeviceKeepsEveryDtypeAndLeavesTheSourceUsable()
    {
        using PackedBatch batch = _examples.ValidBuilder().Build();
        using PackedBatch moved = batch.To(torch.CPU, nonBlocking: true);

        Assert.Equal(batch.NamedTensors().Select(t => (t.Name, t.Tensor.dtype)), moved.NamedTensors().Select(t => (t.Name, t.Tensor.dtype)));
        moved.Validate();
        batch.Validate();
    }

    [Fact]
    [Trait("Requires", "cuda")] // .ci/gpu-check.sh runs the tests with this trait
    public void ToCudaKeepsIndexTensorsInt64()
    {
        Bagel.Core.Native.TorchRuntime.EnsureLoaded();
        Assert.SkipUnless(torch.cuda.is_available(), "Needs a CUDA device.");
        using PackedBatch batch = _examples.ValidBuilder().Build();
        using PackedBatch moved = batch.To(torch.CUDA, nonBlocking: true);
        Assert.All(moved.NamedTensors(), t => Assert.Equal(DeviceType.CUDA, t.Tensor.device_type));
        Assert.Equal(ScalarType.Int64, moved.Vae!.MseLossIndexes.dtype);
        moved.Validate(new PackedBatchLimits { MaxLatentSize = PackedBatchExamples.MaxLatentSize });
    }

    [Fact]
    public void DisposeReleasesEveryTensor()
    {
        PackedBatch batch = _examples.ValidBuilder().Build();
        var tensors = batch.NamedTensors().Select(t => t.Tensor).ToList();
        batch.Dispose();
        Assert.All(tensors, t => Assert.True(t.IsInvalid));
    }
}
