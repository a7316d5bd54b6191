namespace Bagel.Training.Ema;

/// <summary>The EMA copy and the live model do not have the same parameters; the message names the key.</summary>
public sealed class EmaMismatchException(string message) : Exception(message);
