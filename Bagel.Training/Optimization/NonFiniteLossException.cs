namespace Bagel.Training.Optimization;

/// <summary>Too many steps in a row had a NaN or infinite loss or gradient norm.</summary>
public sealed class NonFiniteLossException(string message) : Exception(message);
