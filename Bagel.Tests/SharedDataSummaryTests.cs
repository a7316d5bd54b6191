namespace Bagel.Tests;

/// <summary>One report for all the tests left out because the external test data is absent (see <see cref="NeedsSharedDataAttribute"/>).</summary>
public sealed class SharedDataSummaryTests
{
    [Fact]
    public void TheSharedDataTheTestsNeedIsPresent()
    {
        IReadOnlyList<(string Resource, int Tests)> missing = SharedDataNeeds.MissingInAssembly();
        if (missing.Count == 0) return;
        string where = SharedData.Root ?? $"../shared/data beside the repository or ${SharedData.EnvironmentVariable} (neither found)";
        Assert.Skip($"Shared test data absent from {where}; these tests were not run:\n"
                    + string.Join("\n", missing.Select(m => $"  {m.Resource}: {m.Tests} test method(s)")));
    }
}
