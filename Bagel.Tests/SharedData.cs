namespace Bagel.Tests;

/// <summary>
/// Locates the external test data in ../shared/data (beside the clone, never copied into the repository).
/// Tests that need it call <see cref="RequireDirectory"/>, which skips the test with a clear message when absent.
/// </summary>
internal static class SharedData
{
    /// <summary>The environment variable that overrides the location.</summary>
    public const string EnvironmentVariable = "BAGEL_SHARED_DATA";

    /// <summary>The data folder, or null when it cannot be found.</summary>
    public static string? Root { get; } = Find();

    /// <summary>The repository root (the folder holding Bagel.sln).</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>Returns the path of a folder or file under the data folder, or skips the test.</summary>
    public static string Require(string relativePath)
    {
        if (Root is null)
            Assert.Skip($"../shared/data was not found (looked beside the repository and in ${EnvironmentVariable}); this test needs '{relativePath}'.");
        string path = Path.Combine(Root, relativePath);
        if (!File.Exists(path) && !Directory.Exists(path))
            Assert.Skip($"'{path}' is absent from the shared test data.");
        return path;
    }

    /// <summary>True when the data folder holds <paramref name="relativePath"/> (a file or a folder).</summary>
    public static bool Exists(string relativePath) =>
        Root is not null && (File.Exists(Path.Combine(Root, relativePath)) || Directory.Exists(Path.Combine(Root, relativePath)));

    /// <summary>Same as <see cref="Require"/>, for a folder.</summary>
    public static string RequireDirectory(string relativePath) => Require(relativePath);

    private static string? Find()
    {
        string? fromEnv = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(fromEnv) && Directory.Exists(fromEnv)) return fromEnv;
        string candidate = Path.GetFullPath(Path.Combine(FindRepositoryRoot(), "..", "shared", "data"));
        return Directory.Exists(candidate) ? candidate : null;
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Bagel.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"Bagel.sln was not found above '{AppContext.BaseDirectory}'.");
    }
}
