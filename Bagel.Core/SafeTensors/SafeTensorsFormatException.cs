namespace Bagel.Core.SafeTensors;

/// <summary>
/// A safetensors file (or a sharded checkpoint's index) is malformed. The message names the file and the tensor or
/// header field at fault; the file must be re-exported or re-downloaded.
/// </summary>
public sealed class SafeTensorsFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="filePath">The file at fault.</param>
    /// <param name="tensorName">The tensor at fault, when the fault is one tensor's entry.</param>
    /// <param name="field">The header field at fault (e.g. "data_offsets", "dtype", "__metadata__", "header length").</param>
    /// <param name="problem">What is wrong, in a sentence.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public SafeTensorsFormatException(string filePath, string? tensorName, string? field, string problem, Exception? innerException = null)
        : base(Compose(filePath, tensorName, field, problem), innerException)
    {
        FilePath = filePath;
        TensorName = tensorName;
        Field = field;
    }

    /// <summary>The malformed file.</summary>
    public string FilePath { get; }

    /// <summary>The tensor whose entry is at fault, or null when the fault is not one tensor's.</summary>
    public string? TensorName { get; }

    /// <summary>The header field at fault, or null.</summary>
    public string? Field { get; }

    private static string Compose(string filePath, string? tensorName, string? field, string problem)
    {
        string where = (tensorName, field) switch
        {
            (not null, not null) => $" tensor '{tensorName}', field '{field}':",
            (not null, null) => $" tensor '{tensorName}':",
            (null, not null) => $" field '{field}':",
            _ => "",
        };
        return $"Malformed safetensors file '{filePath}':{where} {problem} Re-export or re-download the file.";
    }
}
