using Bagel.Core.Native;
using Bagel.Core.SafeTensors;
using TorchSharp;

namespace Bagel.Tests.Core.SafeTensors;

/// <summary>The chunked path (used above 256 MiB) exercised with a tiny chunk size.</summary>
public sealed class TensorBytesTests
{
    public TensorBytesTests() => TorchRuntime.EnsureLoaded();

    [Fact]
    public void FillCopiesEveryChunkIncludingAShortLastOne()
    {
        using var scope = torch.NewDisposeScope();
        var expected = SampleTensors.Make(SafeTensorDType.F32, 5, 7);
        byte[] bytes = SampleTensors.Bytes(expected);
        var destination = torch.zeros(5, 7);

        TensorBytes.Fill(bytes, destination, chunkBytes: 24);

        Assert.True(destination.Equals(expected));
    }

    [Fact]
    public void WriteToStreamsEveryChunkInOrder()
    {
        using var scope = torch.NewDisposeScope();
        var source = SampleTensors.Make(SafeTensorDType.I16, 3, 11);
        using var stream = new MemoryStream();

        TensorBytes.WriteTo(source, stream, chunkBytes: 10);

        Assert.Equal(SampleTensors.Bytes(source), stream.ToArray());
    }
}
