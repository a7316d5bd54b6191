using System.Diagnostics;
using System.Text;

namespace Bagel.Tests.Infrastructure;

/// <summary>
/// Runs one test method of this assembly in a child process and SIGKILLs it (or sends it another signal) once it
/// signals, by creating a marker file, that it reached the moment to kill (used by the kill-during-save and graceful
/// stop tests). The child method must skip itself
/// unless its environment variable is set.
/// </summary>
internal static class ChildTestProcess
{
    /// <summary>
    /// Starts <paramref name="testClass"/>.<paramref name="method"/> with <paramref name="variable"/> set to
    /// <paramref name="value"/>, waits up to <paramref name="timeout"/> for <paramref name="marker"/> to exist, then kills
    /// the child (SIGKILL on Unix: no finally blocks, no cleanup). Fails with the child's output if the marker never appears.
    /// </summary>
    public static void RunUntilMarkerThenKill(Type testClass, string method, string variable, string value, string marker, TimeSpan timeout) =>
        RunUntilMarkerThen(testClass, method, variable, value, marker, timeout, signal: null, out _);

    /// <summary>
    /// As <see cref="RunUntilMarkerThenKill"/>, but sends <paramref name="signal"/> (a name for <c>kill -s</c>, such as
    /// <c>TERM</c>) once the marker exists and waits up to <paramref name="timeout"/> for the child to end by itself;
    /// returns its exit code and output. Unix only.
    /// </summary>
    public static (int ExitCode, string Output) RunUntilMarkerThenSignal(Type testClass, string method, string variable, string value, string marker, string signal, TimeSpan timeout)
    {
        int exitCode = RunUntilMarkerThen(testClass, method, variable, value, marker, timeout, signal, out string output);
        return (exitCode, output);
    }

    private static int RunUntilMarkerThen(Type testClass, string method, string variable, string value, string marker, TimeSpan timeout, string? signal, out string childOutput)
    {
        string assembly = testClass.Assembly.Location;
        string appHost = Path.ChangeExtension(assembly, OperatingSystem.IsWindows() ? ".exe" : null);
        var start = File.Exists(appHost) ? new ProcessStartInfo(appHost) : new ProcessStartInfo("dotnet") { ArgumentList = { "exec", assembly } };
        start.ArgumentList.Add("-method");
        start.ArgumentList.Add($"{testClass.FullName}.{method}");
        start.Environment[variable] = value;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using Process child = Process.Start(start)!;
        var output = new StringBuilder();
        child.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        child.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        try
        {
            var clock = Stopwatch.StartNew();
            while (!File.Exists(marker) && !child.HasExited && clock.Elapsed < timeout) Thread.Sleep(20);
            lock (output) Assert.True(File.Exists(marker), $"The child {method} never reached its kill point. Its output:\n{output}");
            if (signal is not null)
            {
                using (Process kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-s", signal, child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) } })!)
                    kill.WaitForExit();
                bool ended = child.WaitForExit(timeout);
                lock (output) Assert.True(ended, $"The child {method} did not end within {timeout} of SIG{signal}. Its output:\n{output}");
            }
        }
        finally
        {
            if (!child.HasExited) child.Kill();
            child.WaitForExit();
        }
        lock (output) childOutput = output.ToString();
        return child.ExitCode;
    }
}
