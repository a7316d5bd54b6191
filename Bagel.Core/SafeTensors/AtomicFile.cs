namespace Bagel.Core.SafeTensors;

/// <summary>Temp names beside the final file, so that the final rename stays on one file system.</summary>
internal static class AtomicFile
{
    /// <summary>A hidden, unique temp path in the same folder as <paramref name="finalPath"/>.</summary>
    public static string TempPathFor(string finalPath)
    {
        string folder = Path.GetDirectoryName(finalPath) ?? ".";
        return Path.Combine(folder, $".{Path.GetFileName(finalPath)}.{Guid.NewGuid():N}.tmp");
    }

    /// <summary>Deletes a file or folder, ignoring failures (used while already handling an error).</summary>
    public static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
            else if (File.Exists(path)) File.Delete(path);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
