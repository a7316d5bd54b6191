using System.Globalization;

namespace Bagel.Core.Distributed;

/// <summary>Which launcher's variables described this process.</summary>
public enum LaunchKind
{
    /// <summary>No launcher: one process (rank 0 of 1).</summary>
    None,

    /// <summary>torchrun (or Bagel.Train's <c>--nproc_per_node</c> launcher): <c>RANK</c>, <c>WORLD_SIZE</c>, <c>LOCAL_RANK</c>, <c>LOCAL_WORLD_SIZE</c>, <c>MASTER_ADDR</c>, <c>MASTER_PORT</c>.</summary>
    Torchrun,

    /// <summary>Open MPI's <c>mpirun</c>: <c>OMPI_COMM_WORLD_RANK</c>, <c>OMPI_COMM_WORLD_SIZE</c>, <c>OMPI_COMM_WORLD_LOCAL_RANK</c>, <c>OMPI_COMM_WORLD_LOCAL_SIZE</c>.</summary>
    OpenMpi,

    /// <summary>SLURM's <c>srun</c>: <c>SLURM_PROCID</c>, <c>SLURM_NTASKS</c>, <c>SLURM_LOCALID</c>, <c>SLURM_NODEID</c>, <c>SLURM_TASKS_PER_NODE</c>, <c>SLURM_JOB_NODELIST</c>.</summary>
    Slurm,
}

/// <summary>
/// Rank and world of this process as its launcher set them: torchrun's variables first, then Open MPI's (a process
/// that <c>mpirun</c> started, also inside a SLURM allocation, whose batch step sets <c>SLURM_PROCID=0</c> for every
/// child), then SLURM's (<c>srun</c>). <c>MASTER_ADDR</c> / <c>MASTER_PORT</c>, when set, win under every launcher;
/// otherwise SLURM's first node, or 127.0.0.1, and port 29500 (torchrun's default).
/// </summary>
/// <param name="Kind">The launcher whose variables were read.</param>
/// <param name="Rank">Global rank.</param>
/// <param name="WorldSize">Number of processes.</param>
/// <param name="LocalRank">Rank on this machine.</param>
/// <param name="LocalWorldSize">Processes on this machine.</param>
/// <param name="MasterAddress">Host of rank 0's rendezvous (NCCL's unique id is sent from there).</param>
/// <param name="MasterPort">Port of the rendezvous.</param>
public sealed record LaunchEnvironment(LaunchKind Kind, int Rank, int WorldSize, int LocalRank, int LocalWorldSize, string MasterAddress, int MasterPort)
{
    /// <summary>torchrun's default rendezvous port.</summary>
    public const int DefaultMasterPort = 29500;

    /// <summary>A single process: rank 0 of 1.</summary>
    public static LaunchEnvironment Single { get; } = new(LaunchKind.None, 0, 1, 0, 1, "127.0.0.1", DefaultMasterPort);

    /// <summary>Reads this process's environment.</summary>
    /// <exception cref="DistributedException">A variable is not a number or a rank lies outside its world.</exception>
    public static LaunchEnvironment FromEnvironment() => From(Environment.GetEnvironmentVariable);

    /// <summary>Reads the variables that <paramref name="variable"/> returns (null when unset).</summary>
    /// <param name="variable">Looks a variable up by name.</param>
    /// <returns>The launch description; <see cref="Single"/> when no launcher's variables are set.</returns>
    /// <exception cref="DistributedException">A variable is not a number or a rank lies outside its world.</exception>
    public static LaunchEnvironment From(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        string? masterAddress = NonEmpty(variable("MASTER_ADDR"));
        int masterPort = NonEmpty(variable("MASTER_PORT")) is { } port ? Parse(variable, "MASTER_PORT", port, min: 1) : DefaultMasterPort;
        if (masterPort > 65535) throw new DistributedException($"MASTER_PORT is {masterPort}; a TCP port is 1 to 65535.");

        LaunchEnvironment result;
        if (NonEmpty(variable("RANK")) is { } rank && NonEmpty(variable("WORLD_SIZE")) is { } world)
        {
            int r = Parse(variable, "RANK", rank, 0), w = Parse(variable, "WORLD_SIZE", world, 1);
            int localRank = Optional(variable, "LOCAL_RANK") ?? 0;
            int localWorld = Optional(variable, "LOCAL_WORLD_SIZE") ?? w;
            result = new LaunchEnvironment(LaunchKind.Torchrun, r, w, localRank, localWorld, masterAddress ?? "127.0.0.1", masterPort);
        }
        else if (NonEmpty(variable("OMPI_COMM_WORLD_RANK")) is { } ompiRank && NonEmpty(variable("OMPI_COMM_WORLD_SIZE")) is { } ompiSize)
        {
            int r = Parse(variable, "OMPI_COMM_WORLD_RANK", ompiRank, 0), w = Parse(variable, "OMPI_COMM_WORLD_SIZE", ompiSize, 1);
            result = new LaunchEnvironment(LaunchKind.OpenMpi, r, w, Optional(variable, "OMPI_COMM_WORLD_LOCAL_RANK") ?? 0,
                Optional(variable, "OMPI_COMM_WORLD_LOCAL_SIZE") ?? 1, masterAddress ?? "127.0.0.1", masterPort);
        }
        else if (NonEmpty(variable("SLURM_PROCID")) is { } procId && NonEmpty(variable("SLURM_NTASKS") ?? variable("SLURM_NPROCS")) is { } tasks)
        {
            int r = Parse(variable, "SLURM_PROCID", procId, 0), w = Parse(variable, "SLURM_NTASKS", tasks, 1);
            int localRank = Optional(variable, "SLURM_LOCALID") ?? 0;
            int node = Optional(variable, "SLURM_NODEID") ?? 0;
            int localWorld = NonEmpty(variable("SLURM_TASKS_PER_NODE")) is { } perNode ? TasksOnNode(perNode, node) : 1;
            string address = masterAddress ?? (NonEmpty(variable("SLURM_JOB_NODELIST") ?? variable("SLURM_NODELIST")) is { } list ? FirstHost(list) : "127.0.0.1");
            result = new LaunchEnvironment(LaunchKind.Slurm, r, w, localRank, localWorld, address, masterPort);
        }
        else
        {
            return Single with { MasterAddress = masterAddress ?? "127.0.0.1", MasterPort = masterPort };
        }
        if (result.Rank >= result.WorldSize)
            throw new DistributedException($"{result.Kind}'s variables give rank {result.Rank} but world size {result.WorldSize}; a rank is below the world size.");
        if (result.LocalRank >= result.LocalWorldSize)
            throw new DistributedException($"{result.Kind}'s variables give local rank {result.LocalRank} but local world size {result.LocalWorldSize}.");
        return result;
    }

    /// <summary>
    /// The task count of node <paramref name="node"/> in SLURM's compressed <c>SLURM_TASKS_PER_NODE</c>, such as
    /// <c>2(x3),1</c> (three nodes with 2 tasks, then one with 1).
    /// </summary>
    /// <param name="tasksPerNode">The variable's value.</param>
    /// <param name="node">The node index (<c>SLURM_NODEID</c>).</param>
    /// <returns>The task count of that node.</returns>
    /// <exception cref="DistributedException">The value does not parse or has fewer nodes.</exception>
    public static int TasksOnNode(string tasksPerNode, int node)
    {
        ArgumentNullException.ThrowIfNull(tasksPerNode);
        int index = 0;
        foreach (string part in tasksPerNode.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            int paren = part.IndexOf('(', StringComparison.Ordinal);
            string countText = paren < 0 ? part : part[..paren];
            int repeat = 1;
            if (paren >= 0 && !(part.EndsWith(')') && part[(paren + 1)..].StartsWith('x')
                && int.TryParse(part[(paren + 2)..^1], NumberStyles.None, CultureInfo.InvariantCulture, out repeat)))
                throw new DistributedException($"SLURM_TASKS_PER_NODE is '{tasksPerNode}'; its part '{part}' is not N or N(xR).");
            if (!int.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out int count))
                throw new DistributedException($"SLURM_TASKS_PER_NODE is '{tasksPerNode}'; its part '{part}' is not N or N(xR).");
            if (node < index + repeat) return count;
            index += repeat;
        }
        throw new DistributedException($"SLURM_TASKS_PER_NODE is '{tasksPerNode}', which lists {index} node(s); SLURM_NODEID is {node}.");
    }

    /// <summary>The first host of a SLURM node list such as <c>gpu[003-005,9],login1</c> (gives <c>gpu003</c>).</summary>
    /// <param name="nodeList">The value of <c>SLURM_JOB_NODELIST</c>.</param>
    /// <returns>The first host name.</returns>
    public static string FirstHost(string nodeList)
    {
        ArgumentNullException.ThrowIfNull(nodeList);
        string list = nodeList.Trim();
        int bracket = list.IndexOf('[', StringComparison.Ordinal), comma = list.IndexOf(',', StringComparison.Ordinal);
        if (bracket < 0 || (comma >= 0 && comma < bracket)) return comma < 0 ? list : list[..comma];
        string prefix = list[..bracket];
        string first = list[(bracket + 1)..].Split([',', ']'], 2)[0];
        return prefix + first.Split('-', 2)[0];
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static int? Optional(Func<string, string?> variable, string name) =>
        NonEmpty(variable(name)) is { } value ? Parse(variable, name, value, 0) : null;

    private static int Parse(Func<string, string?> variable, string name, string value, int min)
    {
        _ = variable;
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int parsed) || parsed < min)
            throw new DistributedException($"{name} is '{value}'; it must be a whole number of at least {min}.");
        return parsed;
    }
}
