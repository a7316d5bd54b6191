using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Bagel.Training.Checkpoints;

/// <summary>Small-file helpers for checkpoints: atomic JSON writes with fsync, and reads that name the file on error.</summary>
public static class CheckpointFiles
{
    /// <summary>Writes <paramref name="value"/> as JSON to a temp file beside <paramref name="path"/>, flushes it to disk, then renames it.</summary>
    public static void WriteJsonAtomic<T>(string path, T value, JsonTypeInfo<T> typeInfo)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);
        WriteBytesAtomic(path, bytes);
    }

    /// <summary>Writes <paramref name="bytes"/> to a temp file beside <paramref name="path"/>, flushes it to disk, then renames it.</summary>
    public static void WriteBytesAtomic(string path, ReadOnlySpan<byte> bytes)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(folder);
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            if (File.Exists(temp)) File.Delete(temp);
            throw;
        }
    }

    /// <summary>Reads JSON from <paramref name="path"/>.</summary>
    /// <exception cref="CheckpointException">When the file is missing, not JSON, or empty.</exception>
    public static T ReadJson<T>(string path, JsonTypeInfo<T> typeInfo)
    {
        if (!File.Exists(path)) throw new CheckpointException($"{path} does not exist.");
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), typeInfo)
                ?? throw new CheckpointException($"{path} holds JSON null; expected a {typeof(T).Name}.");
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path} is not a valid {typeof(T).Name} JSON file: {e.Message}", e);
        }
    }

    /// <summary>
    /// Flushes a folder's entry table to disk, so that a rename inside it survives a power cut. .NET cannot open a
    /// folder as a file, so this calls POSIX <c>open</c>/<c>fsync</c>; a no-op on Windows (NTFS journals renames) and
    /// where the file system refuses (the rename is still atomic, only its durability is weaker).
    /// </summary>
    public static void FsyncDirectory(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (OperatingSystem.IsWindows()) return;
        try
        {
            int fd = PosixFile.Open(folder, PosixFile.ReadOnly);
            if (fd < 0) return;
            _ = PosixFile.Fsync(fd);
            _ = PosixFile.Close(fd);
        }
        catch (DllNotFoundException)
        {
        }
        catch (EntryPointNotFoundException)
        {
        }
    }
}
