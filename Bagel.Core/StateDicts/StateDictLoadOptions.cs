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

    /// <summary>
    /// Module keys the load leaves as the module has them and does not count as missing, even when strict: tables a
    /// model rebuilds from its configuration (fixed position tables, for instance) rather than reads from a file.
    /// Default: null, every module key must be filled.
    /// </summary>
    public Func<string, bool>? KeepModuleKey { get; init; }

    /// <summary>Where the non-strict report and progress go (default: nowhere).</summary>
    public ILogger? Logger { get; init; }
}
