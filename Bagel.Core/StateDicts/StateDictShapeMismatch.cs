using Bagel.Core.SafeTensors;

namespace Bagel.Core.StateDicts;

/// <summary>A source tensor whose shape differs from the module's tensor it maps to.</summary>
/// <param name="SourceKey">The key in the file.</param>
/// <param name="ModuleKey">The module's state-dict key it maps to.</param>
/// <param name="SourceShape">The shape in the file.</param>
/// <param name="ModuleShape">The module's shape.</param>
public sealed record StateDictShapeMismatch(string SourceKey, string ModuleKey, IReadOnlyList<long> SourceShape, IReadOnlyList<long> ModuleShape)
{
    /// <summary>"key: file [2, 3] vs module [3, 2]" (with the mapping when the keys differ).</summary>
    public override string ToString()
    {
        string keys = SourceKey == ModuleKey ? SourceKey : $"{SourceKey} -> {ModuleKey}";
        return $"{keys}: file {SafeTensorInfo.FormatShape(SourceShape)} vs module {SafeTensorInfo.FormatShape(ModuleShape)}";
    }
}
