namespace Bagel.Core.Distributed;

/// <summary>A process group could not be set up or a collective failed; the message names the backend, rank and cause.</summary>
public class DistributedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DistributedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What failed, naming the rank.</param>
    public DistributedException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What failed, naming the rank.</param>
    /// <param name="innerException">The cause.</param>
    public DistributedException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

/// <summary>
/// A collective did not complete within the process group's timeout: another rank died, hung or called a different
/// collective. <see cref="SuspectRanks"/> lists the ranks it waited for (those found dead first). After this the
/// process group is unusable; the process should end.
/// </summary>
public sealed class CollectiveTimeoutException : DistributedException
{
    /// <summary>Creates the exception.</summary>
    public CollectiveTimeoutException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What timed out.</param>
    public CollectiveTimeoutException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What timed out.</param>
    /// <param name="innerException">The cause.</param>
    public CollectiveTimeoutException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a timed-out collective.</summary>
    /// <param name="message">What timed out, naming the ranks.</param>
    /// <param name="rank">The rank that timed out (this process).</param>
    /// <param name="suspectRanks">The ranks it waited for; dead ones first.</param>
    public CollectiveTimeoutException(string message, int rank, IReadOnlyList<int> suspectRanks) : base(message)
    {
        Rank = rank;
        SuspectRanks = suspectRanks;
    }

    /// <summary>The rank that gave up waiting (this process).</summary>
    public int Rank { get; }

    /// <summary>The ranks waited for: those found exited first, then the rest of the other ranks.</summary>
    public IReadOnlyList<int> SuspectRanks { get; } = [];
}
