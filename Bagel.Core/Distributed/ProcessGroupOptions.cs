using System.Globalization;

namespace Bagel.Core.Distributed;

/// <summary>Which collective engine a process group uses.</summary>
public enum DistributedBackend
{
    /// <summary>One process: <see cref="SingleProcessGroup"/> when the world size is 1, else NCCL on CUDA and MPI on CPU.</summary>
    Auto,

    /// <summary>Open MPI on CPU tensors (processes started by mpirun or srun).</summary>
    Mpi,

    /// <summary>NCCL on CUDA tensors (processes started by torchrun, srun or mpirun; rendezvous at MASTER_ADDR:MASTER_PORT).</summary>
    Nccl,
}

/// <summary>How <see cref="ProcessGroupFactory"/> sets up this process's group.</summary>
public sealed record ProcessGroupOptions
{
    /// <summary>The default collective timeout: 10 minutes (long enough for rank 0 to write a large checkpoint while the others wait).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);

    /// <summary>The engine. Default <see cref="DistributedBackend.Auto"/>; <c>BAGEL_DIST_BACKEND</c> (<c>auto</c>, <c>mpi</c>, <c>nccl</c>) overrides it in <see cref="FromEnvironment"/>.</summary>
    public DistributedBackend Backend { get; init; } = DistributedBackend.Auto;

    /// <summary>How long one collective may wait for the other ranks. Default 10 minutes; <c>BAGEL_DIST_TIMEOUT</c> (seconds) overrides it in <see cref="FromEnvironment"/>.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>Whether the model trains on CUDA (chooses NCCL under <see cref="DistributedBackend.Auto"/>). Default false.</summary>
    public bool Cuda { get; init; }

    /// <summary>The launcher's variables. Default: read from this process's environment.</summary>
    public LaunchEnvironment? Launch { get; init; }

    /// <summary>The options from <c>BAGEL_DIST_BACKEND</c> and <c>BAGEL_DIST_TIMEOUT</c>.</summary>
    /// <param name="cuda">Whether the model trains on CUDA.</param>
    /// <exception cref="DistributedException">A variable has a value that is not allowed.</exception>
    public static ProcessGroupOptions FromEnvironment(bool cuda)
    {
        var options = new ProcessGroupOptions { Cuda = cuda };
        if (Environment.GetEnvironmentVariable("BAGEL_DIST_BACKEND") is { Length: > 0 } backend)
        {
            options = options with
            {
                Backend = backend.Trim().ToLowerInvariant() switch
                {
                    "auto" => DistributedBackend.Auto,
                    "mpi" => DistributedBackend.Mpi,
                    "nccl" => DistributedBackend.Nccl,
                    _ => throw new DistributedException($"BAGEL_DIST_BACKEND is '{backend}'; use auto, mpi or nccl."),
                },
            };
        }
        if (Environment.GetEnvironmentVariable("BAGEL_DIST_TIMEOUT") is { Length: > 0 } timeout)
        {
            if (!double.TryParse(timeout, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) || !(seconds > 0))
                throw new DistributedException($"BAGEL_DIST_TIMEOUT is '{timeout}'; give the collective timeout in seconds (a positive number).");
            options = options with { Timeout = TimeSpan.FromSeconds(seconds) };
        }
        return options;
    }
}

/// <summary>Creates this process's group from its launcher's variables.</summary>
public static class ProcessGroupFactory
{
    /// <summary>
    /// The backend <paramref name="options"/> choose for <paramref name="launch"/>: <see cref="DistributedBackend.Auto"/>
    /// means none (a single process) at world size 1, else NCCL on CUDA and MPI on CPU.
    /// </summary>
    /// <returns>Null for a single process; else the backend.</returns>
    public static DistributedBackend? Choose(ProcessGroupOptions options, LaunchEnvironment launch)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(launch);
        if (options.Backend == DistributedBackend.Auto)
            return launch.WorldSize == 1 ? null : options.Cuda ? DistributedBackend.Nccl : DistributedBackend.Mpi;
        return options.Backend;
    }

    /// <summary>
    /// Creates the group: <see cref="SingleProcessGroup.Instance"/> for one process, else <see cref="MpiProcessGroup"/>
    /// or <see cref="NcclProcessGroup"/>.
    /// </summary>
    /// <exception cref="DistributedException">The backend's library is missing (the message says what to install), the
    /// launcher does not suit the backend (MPI needs mpirun or srun), or the ranks cannot meet.</exception>
    public static IProcessGroup Create(ProcessGroupOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        LaunchEnvironment launch = options.Launch ?? LaunchEnvironment.FromEnvironment();
        switch (Choose(options, launch))
        {
            case null:
                return SingleProcessGroup.Instance;
            case DistributedBackend.Mpi:
                if (launch.Kind == LaunchKind.Torchrun)
                    throw new DistributedException(
                        $"MPI backend: rank {launch.Rank} of {launch.WorldSize} was started by torchrun (RANK/WORLD_SIZE), but MPI's ranks are started by mpirun or srun. " +
                        "On CPU run `mpirun -n N dotnet Bagel.Train.dll ...` (or Bagel.Train --nproc_per_node N, which calls mpirun); torchrun suits CUDA (NCCL).");
                return new MpiProcessGroup(options.Timeout, launch);
            case DistributedBackend.Nccl:
                if (!options.Cuda) throw new DistributedException("NCCL backend: the model is on the CPU; NCCL reduces CUDA tensors. Use the MPI backend on CPU (BAGEL_DIST_BACKEND=mpi).");
                return new NcclProcessGroup(launch, options.Timeout);
            default:
                throw new DistributedException($"Unknown backend {options.Backend}.");
        }
    }
}
