using System.Buffers.Binary;
using Bagel.Core.Native;
using Bagel.Core.SafeTensors;
using TorchSharp;

namespace Bagel.Tests.Core.SafeTensors;

public sealed class SafeTensorsWriterTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public SafeTensorsWriterTests() => TorchRuntime.EnsureLoaded();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void HeaderIsSortedDeterministicAndPaddedWithSpacesToEightBytes()
    {
        using var scope = torch.NewDisposeScope();
        string path = _folder.File("layout.safetensors");
        var metadata = new Dictionary<string, string> { ["z"] = "1", ["a"] = "2" };
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("zeta", torch.ones(3)), PendingTensor.From("alpha", torch.ones(1, 2, torch.ScalarType.Int64))], metadata, cancellationToken: TestContext.Current.CancellationToken);

        byte[] bytes = File.ReadAllBytes(path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, headerLength % 8);
        string header = RawSafeTensors.ReadHeader(path);
        string json = header.TrimEnd(' ');
        Assert.Equal(
            """{"__metadata__":{"a":"2","z":"1"},"alpha":{"dtype":"I64","shape":[1,2],"data_offsets":[0,16]},"zeta":{"dtype":"F32","shape":[3],"data_offsets":[16,28]}}""",
            json);
        Assert.True(header.Length - json.Length < 8);
        Assert.Equal(8 + (long)headerLength + 28, bytes.LongLength);

        string again = _folder.File("again.safetensors");
        SafeTensorsWriter.WriteFile(again, [PendingTensor.From("alpha", torch.ones(1, 2, torch.ScalarType.Int64)), PendingTensor.From("zeta", torch.ones(3))], metadata, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(bytes, File.ReadAllBytes(again));
    }

    [Fact]
    public void RawBytesStreamInChunksInLayoutOrder()
    {
        string path = _folder.File("raw.safetensors");
        using (var writer = SafeTensorsWriter.Create(path, [new SafeTensorsEntry("b", SafeTensorDType.U8, [6]), new SafeTensorsEntry("a", SafeTensorDType.I16, [2])]))
        {
            Assert.Equal(["a", "b"], writer.Layout.Select(t => t.Name));
            writer.WriteBytes([1, 0]);
            writer.WriteBytes([2, 0]);
            Assert.Equal("b", writer.Current!.Name);
            writer.WriteBytes([10, 11, 12]);
            var ex = Assert.Throws<InvalidOperationException>(() => writer.WriteBytes([13, 14, 15, 16]));
            Assert.Contains("'b'", ex.Message, StringComparison.Ordinal);
            writer.WriteBytes([13, 14, 15]);
            writer.Commit();
        }

        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal(new byte[] { 10, 11, 12, 13, 14, 15 }, reader.GetBytes("b").ToArray());
        using var a = reader.ReadTensor("a");
        Assert.Equal(new short[] { 1, 2 }, a.data<short>().ToArray());
    }

    [Fact]
    public void TensorsOutOfLayoutOrderOrOfTheWrongShapeAreRefused()
    {
        using var scope = torch.NewDisposeScope();
        using var writer = SafeTensorsWriter.Create(_folder.File("order.safetensors"),
            [new SafeTensorsEntry("a", SafeTensorDType.F32, [2]), new SafeTensorsEntry("b", SafeTensorDType.F32, [2])]);
        var order = Assert.Throws<InvalidOperationException>(() => writer.WriteTensor("b", torch.ones(2)));
        Assert.Contains("expects tensor 'a'", order.Message, StringComparison.Ordinal);
        var shape = Assert.Throws<ArgumentException>(() => writer.WriteTensor("a", torch.ones(3)));
        Assert.Contains("[2]", shape.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeclaringADuplicateNameIsRefused()
    {
        var ex = Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Create(_folder.File("dup.safetensors"),
            [new SafeTensorsEntry("a", SafeTensorDType.F32, [2]), new SafeTensorsEntry("a", SafeTensorDType.F32, [1])]));
        Assert.Contains("'a'", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_folder.Entries());
    }

    [Fact]
    public void AFailingProducerLeavesNeitherTheFinalFileNorATempFile()
    {
        using var scope = torch.NewDisposeScope();
        string path = _folder.File("fail.safetensors");
        PendingTensor[] tensors =
        [
            PendingTensor.From("a", torch.ones(4)),
            new(new SafeTensorsEntry("b", SafeTensorDType.F32, [4]), () => throw new IOException("disk on fire")),
        ];

        var ex = Assert.Throws<IOException>(() => SafeTensorsWriter.WriteFile(path, tensors, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal("disk on fire", ex.Message);
        Assert.Empty(_folder.Entries());
    }

    [Fact]
    public void AFailedRewriteKeepsThePreviousFileIntact()
    {
        using var scope = torch.NewDisposeScope();
        string path = _folder.File("keep.safetensors");
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("a", torch.ones(4))], cancellationToken: TestContext.Current.CancellationToken);
        byte[] before = File.ReadAllBytes(path);

        Assert.Throws<InvalidOperationException>(() =>
        {
            using var writer = SafeTensorsWriter.Create(path, [new SafeTensorsEntry("a", SafeTensorDType.F32, [4])]);
            writer.WriteBytes(new byte[8]);
            writer.Commit(); // only half the bytes: refused
        });
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["keep.safetensors"], _folder.Entries());
    }

    [Fact]
    public void CancellationLeavesNoFile()
    {
        using var scope = torch.NewDisposeScope();
        using var cancel = new CancellationTokenSource();
        string path = _folder.File("cancel.safetensors");
        PendingTensor[] tensors =
        [
            new(new SafeTensorsEntry("a", SafeTensorDType.F32, [2]), () => { cancel.Cancel(); return torch.ones(2); }),
            PendingTensor.From("b", torch.ones(2)),
        ];
        Assert.Throws<OperationCanceledException>(() => SafeTensorsWriter.WriteFile(path, tensors, cancellationToken: cancel.Token));
        Assert.Empty(_folder.Entries());
    }

    [Fact]
    public void WriteTensorConvertsToTheDeclaredDtype()
    {
        using var scope = torch.NewDisposeScope();
        var source = SampleTensors.Make(SafeTensorDType.F32, 3, 3);
        string path = _folder.File("convert.safetensors");
        SafeTensorsWriter.WriteFile(path, [PendingTensor.From("w", source, SafeTensorDType.F16)], cancellationToken: TestContext.Current.CancellationToken);

        using var reader = SafeTensorsReader.Open(path);
        Assert.Equal(SafeTensorDType.F16, reader.GetInfo("w").DType);
        Assert.Equal(SampleTensors.Bytes(source.to(torch.ScalarType.Float16)), reader.GetBytes("w").ToArray());
    }
}
