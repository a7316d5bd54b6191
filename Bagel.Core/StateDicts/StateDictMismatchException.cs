using System.Text;

namespace Bagel.Core.StateDicts;

/// <summary>
/// A strict state-dict load found keys that do not line up: all missing, unexpected and misshapen keys are
/// reported together. Nothing was loaded. Fix the key map, the model configuration, or load non-strictly.
/// </summary>
public sealed class StateDictMismatchException : Exception
{
    /// <summary>How many names of each kind the message lists before summarising the rest.</summary>
    public const int MaxNamesInMessage = 20;

    /// <summary>Creates the exception from a load report.</summary>
    /// <param name="report">The mismatching report.</param>
    public StateDictMismatchException(StateDictLoadReport report)
        : base(Compose(report))
    {
        SourcePath = report.Source;
        MissingKeys = report.MissingKeys;
        UnexpectedKeys = report.UnexpectedKeys;
        Misshapen = report.Misshapen;
    }

    /// <summary>The file or index that was read.</summary>
    public string SourcePath { get; }

    /// <summary>Module keys no source tensor filled.</summary>
    public IReadOnlyList<string> MissingKeys { get; }

    /// <summary>Source keys with no module counterpart.</summary>
    public IReadOnlyList<string> UnexpectedKeys { get; }

    /// <summary>Pairs whose shapes differ.</summary>
    public IReadOnlyList<StateDictShapeMismatch> Misshapen { get; }

    private static string Compose(StateDictLoadReport report)
    {
        var text = new StringBuilder();
        text.Append($"The state dict in '{report.Source}' does not match the module: ")
            .Append($"{report.MissingKeys.Count} missing, {report.UnexpectedKeys.Count} unexpected, {report.Misshapen.Count} misshapen. Nothing was loaded.");
        AppendList(text, "Missing (in the module, not in the file)", report.MissingKeys);
        AppendList(text, "Unexpected (in the file, not in the module)", report.UnexpectedKeys);
        AppendList(text, "Misshapen", [.. report.Misshapen.Select(m => m.ToString())]);
        text.Append("\nFix: map file keys with StateDictLoadOptions.KeyMap, check the model configuration, or set Strict = false to load what matches.");
        return text.ToString();
    }

    private static void AppendList(StringBuilder text, string title, IReadOnlyList<string> names)
    {
        if (names.Count == 0) return;
        text.Append($"\n{title}: ").Append(string.Join(", ", names.Take(MaxNamesInMessage)));
        if (names.Count > MaxNamesInMessage) text.Append($" ... and {names.Count - MaxNamesInMessage} more");
    }
}
