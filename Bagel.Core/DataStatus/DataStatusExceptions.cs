namespace Bagel.Core.DataStatus;

/// <summary>A data status file is unreadable: bad JSON, an unknown format version, or inconsistent content. The
/// message names the file.</summary>
public sealed class DataStatusFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, naming the file.</param>
    /// <param name="innerException">The underlying failure, if any.</param>
    public DataStatusFormatException(string message, Exception? innerException = null) : base(message, innerException) { }
}

/// <summary>A saved data status does not match this run's world size or worker count, so resume cannot be exact.</summary>
public sealed class DataStatusMismatchException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The saved and current sizes, and what to do.</param>
    public DataStatusMismatchException(string message) : base(message) { }
}
