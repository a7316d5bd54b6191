using System.Text.Json;
using Bagel.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Bagel.Core.DataStatus;

/// <summary>
/// Reads and writes <see cref="DataStatusDocument"/> as JSON (<c>data_status.json</c> in a checkpoint folder).
/// Writes are atomic (temporary file, flushed to disk, then renamed over the target), so a crash never leaves a
/// half-written status. Reads are strict: unknown format versions, unknown members and missing required members are
/// errors naming the file.
/// </summary>
public static class DataStatusFile
{
    /// <summary>The file name inside a checkpoint folder.</summary>
    public const string FileName = "data_status.json";

    private const string FormatVersionProperty = "format_version";

    /// <summary>Serializes <paramref name="document"/> to JSON text (validated first).</summary>
    /// <param name="document">The document.</param>
    /// <returns>Indented JSON.</returns>
    public static string ToJson(DataStatusDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        document.Validate();
        return JsonSerializer.Serialize(document, DataStatusJsonContext.Default.DataStatusDocument);
    }

    /// <summary>Parses JSON text from <see cref="ToJson"/>.</summary>
    /// <param name="json">The text.</param>
    /// <param name="source">A name for messages (the file path).</param>
    /// <returns>The validated document.</returns>
    /// <exception cref="DataStatusFormatException">The text is not a valid data status of this format version.</exception>
    public static DataStatusDocument FromJson(string json, string source = "<string>")
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using (JsonDocument probe = JsonDocument.Parse(json))
            {
                if (probe.RootElement.ValueKind != JsonValueKind.Object
                    || !probe.RootElement.TryGetProperty(FormatVersionProperty, out JsonElement version)
                    || !version.TryGetInt32(out int formatVersion))
                    throw new DataStatusFormatException($"Data status '{source}' has no integer '{FormatVersionProperty}'; it is not a Bagel.NET data status file.");
                if (formatVersion != DataStatusDocument.CurrentFormatVersion)
                    throw new DataStatusFormatException(
                        $"Data status '{source}' has format version {formatVersion}; this build reads version {DataStatusDocument.CurrentFormatVersion}. " +
                        "Use the Bagel.NET version that wrote it, or start the data from scratch.");
            }
            DataStatusDocument document = JsonSerializer.Deserialize(json, DataStatusJsonContext.Default.DataStatusDocument)
                ?? throw new DataStatusFormatException($"Data status '{source}' is JSON null.");
            document.Validate(source);
            return document;
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException)
        {
            throw new DataStatusFormatException($"Data status '{source}' is malformed: {ex.Message}", ex);
        }
    }

    /// <summary>Writes <paramref name="document"/> to <paramref name="path"/> atomically.</summary>
    /// <param name="path">The target file; its folder must exist.</param>
    /// <param name="document">The document (validated first).</param>
    /// <param name="logger">Optional logger.</param>
    public static void Write(string path, DataStatusDocument document, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string json = ToJson(document);
        string temporary = $"{path}.tmp-{Guid.NewGuid():N}";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            using (var writer = new StreamWriter(stream))
            {
                writer.Write(json);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
        if (logger is not null) CoreLog.DataStatusWritten(logger, path, document.Ranks.Count);
    }

    /// <summary>Reads and validates the data status at <paramref name="path"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The document.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataStatusFormatException">The file is not a valid data status of this format version.</exception>
    public static DataStatusDocument Read(string path, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Data status file '{path}' does not exist.", path);
        DataStatusDocument document = FromJson(File.ReadAllText(path), path);
        if (logger is not null) CoreLog.DataStatusRead(logger, path, document.WorldSize, document.NumWorkers);
        return document;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the original failure is what the caller needs to see.
        }
        catch (UnauthorizedAccessException)
        {
            // Same as above.
        }
    }
}
