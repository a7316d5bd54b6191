namespace Bagel.Training.Options;

/// <summary>Thrown when one or more options are invalid; <see cref="Failures"/> lists every bad value.</summary>
public sealed class InvalidTrainingOptionsException : Exception
{
    /// <summary>Creates the exception from the failures of every options object.</summary>
    public InvalidTrainingOptionsException(IReadOnlyList<string> failures)
        : base($"{failures.Count} invalid option(s):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", failures)) =>
        Failures = failures;

    /// <summary>Every failure, one message per bad value, naming its configuration key.</summary>
    public IReadOnlyList<string> Failures { get; }
}
