namespace Bagel.Data.Config;

/// <summary>
/// A data configuration file (dataset registry, dataset mix YAML, parquet_info JSON) is invalid. The message names
/// the file, the line where known, the key path and what to do.
/// </summary>
public sealed class DataConfigException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="filePath">The file at fault, or null for settings made in code.</param>
    /// <param name="keyPath">The dotted key path at fault (for example <c>t2i_pretrain.num_used_data</c>).</param>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="line">The 1-based line in the file, when known.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public DataConfigException(string? filePath, string keyPath, string message, int? line = null, Exception? innerException = null)
        : base(Format(filePath, keyPath, message, line), innerException)
    {
        FilePath = filePath;
        KeyPath = keyPath;
        Line = line;
    }

    /// <summary>The file at fault, or null for settings made in code.</summary>
    public string? FilePath { get; }

    /// <summary>The dotted key path at fault.</summary>
    public string KeyPath { get; }

    /// <summary>The 1-based line in the file, when known.</summary>
    public int? Line { get; }

    private static string Format(string? filePath, string keyPath, string message, int? line)
    {
        string where = filePath is null ? "(configured in code)" : line is null ? filePath : $"{filePath}:{line}";
        return keyPath.Length == 0 ? $"{where}: {message}" : $"{where}: key '{keyPath}': {message}";
    }
}

/// <summary>Several configuration errors found in one pass, reported together.</summary>
public sealed class DataConfigAggregateException : Exception
{
    /// <summary>Creates the exception from the individual errors.</summary>
    /// <param name="errors">Every error found.</param>
    public DataConfigAggregateException(IReadOnlyList<DataConfigException> errors)
        : base($"{errors.Count} data configuration error(s):\n  " + string.Join("\n  ", errors.Select(e => e.Message)))
    {
        Errors = errors;
    }

    /// <summary>Every error found.</summary>
    public IReadOnlyList<DataConfigException> Errors { get; }
}
