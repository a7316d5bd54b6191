namespace Bagel.Core.Batching;

/// <summary>A <see cref="PackedBatch"/> is internally inconsistent; <see cref="Field"/> names the offending field
/// with the reference's name (e.g. <c>mse_loss_indexes</c>).</summary>
public sealed class PackedBatchValidationException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="field">The reference name of the offending field.</param>
    /// <param name="message">What is wrong.</param>
    public PackedBatchValidationException(string field, string message) : base($"Packed batch field '{field}': {message}")
    {
        Field = field;
    }

    /// <summary>The reference name of the offending field.</summary>
    public string Field { get; }
}
