namespace Bagel.Data.Tokenization;

/// <summary>
/// A tokenizer file is missing, is not valid JSON, or holds something a byte-level BPE tokenizer cannot use
/// (a merge line that is not two tokens, a merge whose parts are not in the vocabulary, a duplicate id, ...).
/// The message names the file and the line or JSON key, and says what to fix.
/// </summary>
public sealed class TokenizerFormatException : Exception
{
    /// <summary>Creates the exception for <paramref name="filePath"/>; <paramref name="location"/> is a line or key.</summary>
    /// <param name="filePath">The file that holds the problem.</param>
    /// <param name="location">Where in the file: "line 12" or a JSON key such as "model.merges[3]"; null when the whole file is at fault.</param>
    /// <param name="problem">What is wrong and what to do about it.</param>
    /// <param name="inner">The exception that revealed the problem, if any.</param>
    public TokenizerFormatException(string filePath, string? location, string problem, Exception? inner = null)
        : base(location is null ? $"{filePath}: {problem}" : $"{filePath}, {location}: {problem}", inner)
    {
        FilePath = filePath;
        Location = location;
    }

    /// <summary>The file that holds the problem.</summary>
    public string FilePath { get; }

    /// <summary>The line ("line 12") or JSON key ("model.merges[3]") of the problem; null when the whole file is at fault.</summary>
    public string? Location { get; }
}
