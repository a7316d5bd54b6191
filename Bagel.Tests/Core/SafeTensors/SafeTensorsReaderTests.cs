using Bagel.Core.Native;
using Bagel.Core.SafeTensors;
using TorchSharp;

namespace Bagel.Tests.Core.SafeTensors;

public sealed class SafeTensorsReaderTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public SafeTensorsReaderTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _folder.Dispose();

    public static TheoryData<SafeTensorDType> AllDTypes() => [.. Enum.GetValues<SafeTensorDType>()];

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void EveryDtypeRoundTripsBitForBit(SafeTensorDType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var matrix = SampleTensors.Make(dtype, 3, 5);
        var scalar = SampleTensors.Make(dtype);
        var empty = SampleTensors.Make(dtype, 0, 4);
        string path = _folder.File("all.safetensors");
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("matrix", matrix), PendingTensor.From("scalar", scalar), PendingTensor.From("empty", empty)], cancellationToken: TestContext.Current.CancellationToken);

        using var reader = SafeTensorsReader.Open(path);
        SafeTensorInfo info = reader.GetInfo("matrix");
        Assert.Equal(dtype, info.DType);
        Assert.Equal([3L, 5L], info.Shape);
        Assert.Equal(SampleTensors.Bytes(matrix), reader.GetBytes("matrix").ToArray());
        var back = reader.ReadTensor("matrix");
        Assert.Equal(dtype.ToScalarType(), back.dtype);
        Assert.True(back.Equals(matrix));
        Assert.Empty(reader.ReadTensor("scalar").shape);
        Assert.True(reader.ReadTensor("scalar").Equals(scalar));
        Assert.Equal([0L, 4L], reader.ReadTensor("empty").shape);
    }

    [Fact]
    public void MetadataRoundTrips()
    {
        using var scope = torch.NewDisposeScope();
        string path = _folder.File("meta.safetensors");
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["step"] = "1200", ["note"] = "ünïcode ok" };
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("w", torch.ones(2))], metadata, cancellationToken: TestContext.Current.CancellationToken);

        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal(metadata.OrderBy(p => p.Key), reader.Metadata.OrderBy(p => p.Key));
    }

    [Fact]
    public void ReadTensorConvertsBf16ToFloat32()
    {
        using var scope = torch.NewDisposeScope();
        var source = SampleTensors.Make(SafeTensorDType.BF16, 4, 3);
        string path = _folder.File("bf16.safetensors");
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("w", source)], cancellationToken: TestContext.Current.CancellationToken);

        using var reader = SafeTensorsReader.Open(path);
        var read = reader.ReadTensor("w", torch.ScalarType.Float32);
        Assert.Equal(torch.ScalarType.Float32, read.dtype);
        Assert.True(read.Equals(source.to(torch.ScalarType.Float32)));
    }

    [Fact]
    public void CopyIntoFillsAnExistingTensorInPlaceWithOrWithoutConversion()
    {
        using var scope = torch.NewDisposeScope();
        var source = SampleTensors.Make(SafeTensorDType.F32, 2, 6);
        string path = _folder.File("w.safetensors");
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("w", source)], cancellationToken: TestContext.Current.CancellationToken);
        using var reader = SafeTensorsReader.Open(path);

        var sameType = torch.zeros(2, 6);
        reader.CopyInto("w", sameType);
        Assert.True(sameType.Equals(source));

        var half = torch.zeros(2, 6, torch.ScalarType.BFloat16);
        reader.CopyInto("w", half);
        Assert.True(half.Equals(source.to(torch.ScalarType.BFloat16)));

        var wrong = torch.zeros(6, 2);
        var ex = Assert.Throws<ArgumentException>(() => reader.CopyInto("w", wrong));
        Assert.Contains("'w'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 6]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CopyBytesToCopiesARangeAndRejectsOutOfBounds()
    {
        using var scope = torch.NewDisposeScope();
        var source = SampleTensors.Make(SafeTensorDType.I32, 8);
        string path = _folder.File("i.safetensors");
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("i", source)], cancellationToken: TestContext.Current.CancellationToken);
        using var reader = SafeTensorsReader.Open(path);

        var middle = new byte[8];
        reader.CopyBytesTo("i", middle, sourceOffset: 12);
        Assert.Equal(SampleTensors.Bytes(source)[12..20], middle);
        Assert.Throws<ArgumentOutOfRangeException>(() => reader.CopyBytesTo("i", new byte[8], sourceOffset: 28));
    }

    [Fact]
    public void UnknownTensorNameIsReportedWithTheFile()
    {
        using var scope = torch.NewDisposeScope();
        string path = _folder.File("one.safetensors");
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("w", torch.ones(1))], cancellationToken: TestContext.Current.CancellationToken);
        using var reader = SafeTensorsReader.Open(path);

        var ex = Assert.Throws<SafeTensorNotFoundException>(() => reader.ReadTensor("v"));
        Assert.Equal("v", ex.TensorName);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OpeningReadsOnlyTheHeaderSoAHugeSparseFileOpensAndSmallTensorsRead()
    {
        // A 3 GiB tensor in a sparse file: an eager reader would need 3 GiB; the lazy one touches 8 bytes of data.
        const long hugeBytes = 3L << 30;
        string header = $$$"""{"huge": {"dtype": "U8", "shape": [{{{hugeBytes}}}], "data_offsets": [0, {{{hugeBytes}}}]}, "small": {"dtype": "I32", "shape": [2], "data_offsets": [{{{hugeBytes}}}, {{{hugeBytes + 8}}}]}}""";
        string path = RawSafeTensors.Write(_folder.File("sparse.safetensors"), header, 0);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            stream.SetLength(stream.Length + hugeBytes + 8);
            stream.Seek(-8, SeekOrigin.End);
            stream.Write(BitConverter.GetBytes(7).Concat(BitConverter.GetBytes(-9)).ToArray());
        }

        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal(["huge", "small"], reader.Tensors.Select(t => t.Name));
        using var small = reader.ReadTensor("small");
        Assert.Equal([7, -9], small.data<int>().ToArray());
        Assert.Throws<NotSupportedException>(() => reader.GetBytes("huge"));
        var tail = new byte[4];
        reader.CopyBytesTo("huge", tail, hugeBytes - 4);
        Assert.Equal(new byte[4], tail);
    }
}
