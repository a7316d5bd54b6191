namespace Bagel.Core.StateDicts;

/// <summary>What a state-dict load matched, loaded and left out.</summary>
/// <param name="Source">The file or index that was read.</param>
/// <param name="LoadedKeys">Module keys that received values.</param>
/// <param name="MissingKeys">Module keys that no source tensor filled.</param>
/// <param name="UnexpectedKeys">Source keys with no module counterpart (after the key map).</param>
/// <param name="IgnoredKeys">Source keys the key map dropped (returned null for).</param>
/// <param name="Misshapen">Pairs whose shapes differ (not loaded).</param>
public sealed record StateDictLoadReport(
    string Source,
    IReadOnlyList<string> LoadedKeys,
    IReadOnlyList<string> MissingKeys,
    IReadOnlyList<string> UnexpectedKeys,
    IReadOnlyList<string> IgnoredKeys,
    IReadOnlyList<StateDictShapeMismatch> Misshapen)
{
    /// <summary>True when nothing was missing, unexpected or misshapen.</summary>
    public bool IsExactMatch => MissingKeys.Count == 0 && UnexpectedKeys.Count == 0 && Misshapen.Count == 0;
}
