using Bagel.Core.SafeTensors;
using Microsoft.Extensions.Logging;

namespace Bagel.Core.StateDicts;

/// <summary>Options for <see cref="StateDictSaver"/>.</summary>
public sealed class StateDictSaveOptions
{
    /// <summary>
    /// Store floating-point tensors as this dtype (e.g. <see cref="SafeTensorDType.BF16"/> to halve a float32 model);
    /// integer and boolean tensors keep theirs. Default null: every tensor keeps its dtype.
    /// </summary>
    public SafeTensorDType? FloatingPointDType { get; init; }

    /// <summary>Maps a module key to the key written to the file; null skips the tensor. Default: keys as they are.</summary>
    public Func<string, string?>? KeyMap { get; init; }

    /// <summary>String metadata for "__metadata__" (default none).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Where to log the result (default: nowhere).</summary>
    public ILogger? Logger { get; init; }
}
