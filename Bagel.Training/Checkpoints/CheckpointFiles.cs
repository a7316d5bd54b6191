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

    /// <summary>Flushes a folder's entry table to disk (so a rename inside it survives a power cut); a no-op where unsupported.</summary>
    public static void FsyncDirectory(string folder)
    {
        if (OperatingSystem.IsWindows()) return;
        try
        {
            using var handle = File.OpenHandle(folder, FileMode.Open, FileAccess.Read);
            RandomAccess.FlushToDisk(handle);
        }
        catch (UnauthorizedAccessException)
        {
            // Some file systems refuse to open folders; the rename is still atomic, only its durability is weaker.
        }
        catch (IOException)
        {
        }
    }
}
