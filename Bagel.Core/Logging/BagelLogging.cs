using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bagel.Core.Logging;

/// <summary>Helpers for components that take an optional <see cref="ILoggerFactory"/>.</summary>
public static class BagelLogging
{
    /// <summary>A logger for <typeparamref name="T"/> from <paramref name="factory"/>, or a no-op logger when it is null.</summary>
    /// <typeparam name="T">The category type.</typeparam>
    /// <param name="factory">The application's logger factory, or null.</param>
    /// <returns>A logger that is never null.</returns>
    public static ILogger<T> CreateLogger<T>(ILoggerFactory? factory) =>
        factory is null ? NullLogger<T>.Instance : factory.CreateLogger<T>();

    /// <summary>A logger for <paramref name="category"/> from <paramref name="factory"/>, or a no-op logger when it is null.</summary>
    /// <param name="factory">The application's logger factory, or null.</param>
    /// <param name="category">The category name.</param>
    /// <returns>A logger that is never null.</returns>
    public static ILogger CreateLogger(ILoggerFactory? factory, string category)
    {
        ArgumentException.ThrowIfNullOrEmpty(category);
        return factory is null ? NullLogger.Instance : factory.CreateLogger(category);
    }
}
