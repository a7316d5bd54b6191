using System.Diagnostics;

namespace Bagel.Tests.Infrastructure;

/// <summary>
/// Runs one test method of this assembly as every rank of an Open MPI job (<c>mpirun -n N</c>). The child method skips
/// itself unless its variable is set; the variables go to every rank. Tests that need it skip with one line when
/// <c>mpirun</c> is not installed.
/// </summary>
internal static class MpiRun
{
    public static string? Mpirun { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(folder => Path.Combine(folder, "mpirun")).FirstOrDefault(File.Exists);

    public static void SkipIfUnavailable()
    {
        if (Mpirun is null) Assert.Skip("mpirun (Open MPI) is not installed, so the multi-process tests did not run: apt-get install openmpi-bin libopenmpi-dev.");
    }

    /// <summary>The command that runs one test method of this assembly (its app host, or dotnet exec).</summary>
    public static List<string> TestMethodCommand(Type testClass, string method)
    {
        string assembly = testClass.Assembly.Location;
        string appHost = Path.ChangeExtension(assembly, null);
        List<string> command = File.Exists(appHost) ? [appHost] : ["dotnet", "exec", assembly];
        command.AddRange(["-method", $"{testClass.FullName}.{method}"]);
        return command;
    }

    /// <summary>Runs <paramref name="testClass"/>.<paramref name="method"/> on <paramref name="ranks"/> ranks and returns mpirun's outcome.</summary>
    public static (ProcessResult Result, TimeSpan Elapsed) Run(Type testClass, string method, int ranks, IReadOnlyDictionary<string, string> environment,
        TimeSpan timeout, bool enableRecovery = false)
    {
        SkipIfUnavailable();
        var arguments = new List<string> { "-n", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "--oversubscribe", "--allow-run-as-root" };
        if (enableRecovery) arguments.Add("--enable-recovery");
        foreach (string name in environment.Keys) arguments.AddRange(["-x", name]);
        arguments.AddRange(TestMethodCommand(testClass, method));
        var clock = Stopwatch.StartNew();
        ProcessResult result = ProcessRunner.Run(Mpirun!, arguments, AppContext.BaseDirectory, environment, timeout);
        return (result, clock.Elapsed);
    }
}
