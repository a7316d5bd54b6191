using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Bagel.Training.Distributed;

/// <summary>How <see cref="LocalLauncher"/> starts the ranks.</summary>
public enum LauncherMode
{
    /// <summary>Through Open MPI's <c>mpirun</c> (CPU training: the MPI backend needs processes that mpirun started).</summary>
    Mpirun,

    /// <summary>As torchrun does: N child processes with <c>RANK</c>, <c>LOCAL_RANK</c>, <c>WORLD_SIZE</c>, <c>LOCAL_WORLD_SIZE</c>, <c>MASTER_ADDR</c>, <c>MASTER_PORT</c> (CUDA training over NCCL).</summary>
    TorchrunVariables,
}

/// <summary>torchrun's launcher flags, as Bagel.Train accepts them.</summary>
/// <param name="NprocPerNode">Processes on this machine (<c>--nproc_per_node</c>).</param>
/// <param name="Nnodes">Machines (<c>--nnodes</c>, default 1).</param>
/// <param name="NodeRank">This machine's index (<c>--node_rank</c>, default 0).</param>
/// <param name="MasterAddress">Rank 0's host (<c>--master_addr</c>, default 127.0.0.1).</param>
/// <param name="MasterPort">The rendezvous port (<c>--master_port</c>, default 29500).</param>
public sealed record LauncherRequest(int NprocPerNode, int Nnodes = 1, int NodeRank = 0, string MasterAddress = "127.0.0.1", int MasterPort = 29500);

/// <summary>
/// Bagel.Train's one-machine launcher for users without torchrun: <c>Bagel.Train --nproc_per_node N [flags]</c> starts N
/// copies of the app with the remaining flags. On CPU (the MPI backend) it runs <c>mpirun -n N</c>; in
/// <see cref="LauncherMode.TorchrunVariables"/> it starts the copies itself with torchrun's variables. A first Ctrl+C or
/// SIGTERM is passed on to every rank (each finishes its step, all stop together and rank 0 writes a final checkpoint);
/// when a rank fails, the others are stopped.
/// </summary>
public static class LocalLauncher
{
    /// <summary>
    /// Splits the launcher flags (<c>--nproc_per_node</c>, <c>--nnodes</c>, <c>--node_rank</c>, <c>--master_addr</c>,
    /// <c>--master_port</c>, <c>--standalone</c>; snake or kebab case, <c>=value</c> or a separate value) from the training flags.
    /// </summary>
    /// <param name="args">The command line.</param>
    /// <param name="request">The launcher request, or null when no launcher flag is present.</param>
    /// <param name="rest">The training flags.</param>
    /// <returns>Null on success; else the problem.</returns>
    public static string? Parse(IReadOnlyList<string> args, out LauncherRequest? request, out IReadOnlyList<string> rest)
    {
        ArgumentNullException.ThrowIfNull(args);
        var remaining = new List<string>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        bool any = false;
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string name = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..].Split('=', 2)[0].Replace('-', '_') : "";
            if (name is "rdzv_backend" or "rdzv_endpoint" or "rdzv_id")
            {
                request = null;
                rest = args;
                return $"--{name}: Bagel.Train's launcher has no elastic rendezvous; use torchrun --no-python with it, or --master_addr/--master_port.";
            }
            if (name == "standalone")
            {
                any = true;
                continue;
            }
            if (name is not ("nproc_per_node" or "nnodes" or "node_rank" or "master_addr" or "master_port"))
            {
                remaining.Add(arg);
                continue;
            }
            any = true;
            string? value = arg.Contains('=', StringComparison.Ordinal) ? arg[(arg.IndexOf('=', StringComparison.Ordinal) + 1)..] : i + 1 < args.Count ? args[++i] : null;
            if (string.IsNullOrEmpty(value))
            {
                request = null;
                rest = args;
                return $"--{name} needs a value.";
            }
            values[name] = value;
        }
        rest = remaining;
        request = null;
        if (!any) return null;
        if (!values.TryGetValue("nproc_per_node", out string? nproc))
            return "--nproc_per_node N is needed with the launcher flags (processes on this machine).";
        int Number(string key, int fallback, int min) =>
            values.TryGetValue(key, out string? text) ? int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= min ? v : throw new FormatException($"--{key} is '{text}'; it must be a whole number of at least {min}.") : fallback;
        try
        {
            int perNode = Number("nproc_per_node", 1, 1), nodes = Number("nnodes", 1, 1), nodeRank = Number("node_rank", 0, 0), port = Number("master_port", 29500, 1);
            _ = nproc;
            if (nodeRank >= nodes) return $"--node_rank is {nodeRank} but --nnodes is {nodes}; it is below the node count.";
            if (port > 65535) return $"--master_port is {port}; a TCP port is 1 to 65535.";
            request = new LauncherRequest(perNode, nodes, nodeRank, values.GetValueOrDefault("master_addr", "127.0.0.1"), port);
            return null;
        }
        catch (FormatException e)
        {
            return e.Message;
        }
    }

    /// <summary>The command that runs this app again: the app host, or <c>dotnet</c> with the app's dll.</summary>
    /// <returns>The program and its leading arguments.</returns>
    public static (string FileName, IReadOnlyList<string> Arguments) CurrentApp()
    {
        string process = Environment.ProcessPath ?? "dotnet";
        string first = Environment.GetCommandLineArgs()[0];
        return Path.GetFileNameWithoutExtension(process) == "dotnet" && first.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
            ? (process, [first])
            : (process, []);
    }

    /// <summary>Starts the ranks and waits for them.</summary>
    /// <param name="request">The launcher flags.</param>
    /// <param name="mode">mpirun (CPU) or torchrun's variables (CUDA).</param>
    /// <param name="fileName">The program each rank runs.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <param name="stderr">Receives the launcher's own problems.</param>
    /// <param name="environment">Extra variables for every rank (optional).</param>
    /// <param name="cancellationToken">Passes a stop on to the ranks (SIGTERM; they finish their step and checkpoint).</param>
    /// <returns>0 when every rank succeeded; else the first failing rank's exit code (mpirun's in mpirun mode); 2 for bad flags.</returns>
    public static async Task<int> RunAsync(LauncherRequest request, LauncherMode mode, string fileName, IReadOnlyList<string> arguments, TextWriter stderr,
        IReadOnlyDictionary<string, string>? environment = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(stderr);
        var children = new List<(int Rank, Process Process)>();
        if (mode == LauncherMode.Mpirun)
        {
            if (request.Nnodes > 1)
            {
                await stderr.WriteLineAsync("Bagel.Train: --nnodes above 1 on CPU: start the ranks with mpirun (a hostfile) or srun instead; see docs/distributed.md.").ConfigureAwait(false);
                return 2;
            }
            string? mpirun = FindOnPath("mpirun");
            if (mpirun is null)
            {
                await stderr.WriteLineAsync("Bagel.Train: --nproc_per_node on CPU runs the ranks through Open MPI's mpirun, which is not on PATH; install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev).").ConfigureAwait(false);
                return 2;
            }
            var start = new ProcessStartInfo(mpirun) { UseShellExecute = false };
            start.ArgumentList.Add("-n");
            start.ArgumentList.Add(request.NprocPerNode.ToString(CultureInfo.InvariantCulture));
            start.ArgumentList.Add("--oversubscribe");
            if (IsRoot()) start.ArgumentList.Add("--allow-run-as-root");
            foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            {
                start.Environment[key] = value;
                start.ArgumentList.Add("-x");
                start.ArgumentList.Add(key);
            }
            start.ArgumentList.Add(fileName);
            foreach (string argument in arguments) start.ArgumentList.Add(argument);
            children.Add((-1, Process.Start(start)!));
        }
        else
        {
            int world = request.NprocPerNode * request.Nnodes;
            for (int local = 0; local < request.NprocPerNode; local++)
            {
                int rank = request.NodeRank * request.NprocPerNode + local;
                var start = new ProcessStartInfo(fileName) { UseShellExecute = false };
                foreach (string argument in arguments) start.ArgumentList.Add(argument);
                foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
                start.Environment["RANK"] = rank.ToString(CultureInfo.InvariantCulture);
                start.Environment["LOCAL_RANK"] = local.ToString(CultureInfo.InvariantCulture);
                start.Environment["GROUP_RANK"] = request.NodeRank.ToString(CultureInfo.InvariantCulture);
                start.Environment["WORLD_SIZE"] = world.ToString(CultureInfo.InvariantCulture);
                start.Environment["LOCAL_WORLD_SIZE"] = request.NprocPerNode.ToString(CultureInfo.InvariantCulture);
                start.Environment["MASTER_ADDR"] = request.MasterAddress;
                start.Environment["MASTER_PORT"] = request.MasterPort.ToString(CultureInfo.InvariantCulture);
                children.Add((rank, Process.Start(start)!));
            }
        }

        using CancellationTokenRegistration forward = cancellationToken.Register(() =>
        {
            foreach (var (_, process) in children) Signal(process, "TERM");
        });
        int exit = 0;
        var pending = children.ToList();
        while (pending.Count > 0)
        {
            Task finished = await Task.WhenAny(pending.Select(c => c.Process.WaitForExitAsync(CancellationToken.None))).ConfigureAwait(false);
            var done = pending.Where(c => c.Process.HasExited).ToList();
            foreach (var child in done)
            {
                pending.Remove(child);
                if (child.Process.ExitCode != 0 && exit == 0)
                {
                    exit = child.Process.ExitCode;
                    if (child.Rank >= 0)
                    {
                        await stderr.WriteLineAsync($"Bagel.Train launcher: rank {child.Rank} (pid {child.Process.Id}) exited with code {exit}; stopping the other ranks.").ConfigureAwait(false);
                        foreach (var (_, other) in pending) Signal(other, "TERM");
                    }
                }
            }
            _ = finished;
        }
        foreach (var (_, process) in children) process.Dispose();
        return exit;
    }

    private static void Signal(Process process, string signal)
    {
        try
        {
            if (process.HasExited) return;
            using Process? kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-s", signal, process.Id.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false });
            kill?.WaitForExit();
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    private static string? FindOnPath(string name)
    {
        foreach (string folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(folder, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    private static bool IsRoot() => OperatingSystem.IsLinux() && geteuid() == 0;

    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint geteuid();
}
