using System.Buffers.Binary;
using System.Text;

namespace Bagel.Tests.Core.SafeTensors;

/// <summary>A temp folder deleted with everything in it when disposed.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder() => Path = Directory.CreateTempSubdirectory("bagel-st-").FullName;

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Every file name in the folder, hidden temp files included, sorted.</summary>
    public string[] Entries() =>
        [.. Directory.EnumerateFileSystemEntries(Path).Select(p => System.IO.Path.GetFileName(p)!).Order(StringComparer.Ordinal)];

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>Builds safetensors bytes by hand, so that tests can make files that are malformed on purpose.</summary>
internal static class RawSafeTensors
{
    /// <summary>An 8-byte little-endian header length, the header JSON as given, then <paramref name="dataBytes"/> bytes (0, 1, 2, ...).</summary>
    public static byte[] Build(string headerJson, long dataBytes, ulong? declaredHeaderLength = null)
    {
        byte[] json = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredHeaderLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        for (long i = 0; i < dataBytes; i++) bytes[8 + json.Length + i] = (byte)i;
        return bytes;
    }

    /// <summary>Writes <see cref="Build"/>'s bytes to <paramref name="path"/> and returns the path.</summary>
    public static string Write(string path, string headerJson, long dataBytes, ulong? declaredHeaderLength = null)
    {
        System.IO.File.WriteAllBytes(path, Build(headerJson, dataBytes, declaredHeaderLength));
        return path;
    }

    /// <summary>The header JSON of a file (without the padding).</summary>
    public static string ReadHeader(string path)
    {
        byte[] bytes = System.IO.File.ReadAllBytes(path);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        return Encoding.UTF8.GetString(bytes, 8, (int)length);
    }
}
