using Microsoft.Extensions.Logging;

namespace Bagel.Core.StateDicts;

/// <summary>Options for <see cref="StateDictLoader"/>.</summary>
public sealed class StateDictLoadOptions
{
    /// <summary>
    /// When true (the default), any missing, unexpected or misshapen key fails the whole load with one
    /// <see cref="StateDictMismatchException"/> before any parameter is touched. When false, the keys that match
    /// are loaded, the rest is reported in the returned <see cref="StateDictLoadReport"/> and logged as a warning.
    /// </summary>
    public bool Strict { get; init; } = true;

    /// <summary>
    /// Maps a key of the source (file) to a key of the module's state dict; returning null ignores that source
    /// tensor (it is then neither loaded nor unexpected). Default: null, keys are used as they are.
    /// </summary>
    public Func<string, string?>? KeyMap { get; init; }

    /// <summary>Where the non-strict report and progress go (default: nowhere).</summary>
    public ILogger? Logger { get; init; }
}
