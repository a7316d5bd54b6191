using Bagel.Core.SafeTensors;

namespace Bagel.Tests.Core.SafeTensors;

/// <summary>Every malformed-file case fails on open with <see cref="SafeTensorsFormatException"/> naming the file and the culprit.</summary>
public sealed class SafeTensorsHeaderValidationTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private SafeTensorsFormatException OpenFails(string headerJson, long dataBytes, ulong? declaredHeaderLength = null)
    {
        string path = RawSafeTensors.Write(_folder.File("bad.safetensors"), headerJson, dataBytes, declaredHeaderLength);
        var ex = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsReader.Open(path));
        Assert.Equal(path, ex.FilePath);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        return ex;
    }

    private static void AssertNames(SafeTensorsFormatException ex, string? tensor, string field)
    {
        Assert.Equal(tensor, ex.TensorName);
        Assert.Equal(field, ex.Field);
        if (tensor is not null) Assert.Contains($"tensor '{tensor}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"field '{field}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadJsonIsRejected()
    {
        var ex = OpenFails("""{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]""", 4);
        AssertNames(ex, null, "header");
        Assert.Contains("not valid JSON", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HeaderLengthBeyondTheFileIsRejected()
    {
        var ex = OpenFails("""{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}""", 4, declaredHeaderLength: 10_000);
        AssertNames(ex, null, "header length");
        Assert.Contains("10000", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FileShorterThanTheLengthPrefixIsRejected()
    {
        string path = _folder.File("tiny.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        var ex = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsReader.Open(path));
        AssertNames(ex, null, "header length");
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TruncatedDataIsRejectedNamingTheLastTensor()
    {
        var ex = OpenFails("""{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}""", 20);
        AssertNames(ex, "b", "data_offsets");
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OffsetsEndingBeforeTheyBeginAreOutOfRange()
    {
        var ex = OpenFails("""{"a": {"dtype": "U8", "shape": [0], "data_offsets": [8, 4]}}""", 8);
        AssertNames(ex, "a", "data_offsets");
        Assert.Contains("out of range", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NegativeOffsetsAreOutOfRange()
    {
        var ex = OpenFails("""{"a": {"dtype": "U8", "shape": [4], "data_offsets": [-4, 0]}}""", 0);
        AssertNames(ex, "a", "data_offsets");
        Assert.Contains("out of range", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OverlappingOffsetsAreRejected()
    {
        var ex = OpenFails("""{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}""", 12);
        AssertNames(ex, "b", "data_offsets");
        Assert.Contains("overlaps tensor 'a'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GapsBetweenTensorsAreRejected()
    {
        var ex = OpenFails("""{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}}""", 20);
        AssertNames(ex, "b", "data_offsets");
        Assert.Contains("gap of 4 bytes after tensor 'a'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DataNotStartingAtZeroIsAGap()
    {
        var ex = OpenFails("""{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}""", 8);
        AssertNames(ex, "a", "data_offsets");
        Assert.Contains("gap", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TrailingBytesAfterTheLastTensorAreRejected()
    {
        var ex = OpenFails("""{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}""", 9);
        AssertNames(ex, null, "data region");
        Assert.Contains("trailing bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ShapeNotMatchingTheByteCountIsRejected()
    {
        var ex = OpenFails("""{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}""", 8);
        AssertNames(ex, "w", "shape");
        Assert.Contains("needs 12 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownDtypeIsRejected()
    {
        var ex = OpenFails("""{"w": {"dtype": "Q4", "shape": [8], "data_offsets": [0, 4]}}""", 4);
        AssertNames(ex, "w", "dtype");
        Assert.Contains("unknown dtype 'Q4'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NegativeDimensionIsRejected()
    {
        var ex = OpenFails("""{"w": {"dtype": "F32", "shape": [-1, 2], "data_offsets": [0, 0]}}""", 0);
        AssertNames(ex, "w", "shape");
        Assert.Contains("negative", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NonIntegerDimensionIsRejected()
    {
        var ex = OpenFails("""{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}""", 4);
        AssertNames(ex, "w", "shape");
    }

    [Fact]
    public void NonStringMetadataValueIsRejected()
    {
        var ex = OpenFails("""{"__metadata__": {"format": "pt", "step": 5}, "w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}""", 1);
        AssertNames(ex, null, "__metadata__.step");
        Assert.Contains("must be strings", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DuplicateTensorKeysAreRejected()
    {
        var ex = OpenFails("""{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}""", 2);
        Assert.Equal("w", ex.TensorName);
        Assert.Contains("appears twice", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingFieldIsRejected()
    {
        var ex = OpenFails("""{"w": {"dtype": "U8", "shape": [1]}}""", 1);
        AssertNames(ex, "w", "data_offsets");
    }

    [Fact]
    public void NonObjectHeaderIsRejected()
    {
        var ex = OpenFails("[1, 2]", 0);
        AssertNames(ex, null, "header");
    }
}
