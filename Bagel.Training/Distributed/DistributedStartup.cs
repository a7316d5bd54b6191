using Bagel.Core.Distributed;
using Microsoft.Extensions.Logging;

namespace Bagel.Training.Distributed;

/// <summary>How the train entry points join the job a launcher started (torchrun, srun, mpirun, <c>--nproc_per_node</c>).</summary>
public static class DistributedStartup
{
    /// <summary>
    /// The group to train with: <paramref name="given"/> when set; else, when the launcher's variables describe more than
    /// one process, a new group from them (<see cref="ProcessGroupFactory"/>, backend and timeout from
    /// <c>BAGEL_DIST_BACKEND</c> / <c>BAGEL_DIST_TIMEOUT</c>); else <see cref="DistributedRun.Current"/>.
    /// </summary>
    /// <param name="given">A group the caller made, or null.</param>
    /// <param name="cuda">Whether the model trains on CUDA (NCCL) rather than the CPU (MPI).</param>
    /// <param name="created">Whether the returned group was created here (the caller disposes it).</param>
    /// <returns>The group.</returns>
    /// <exception cref="DistributedException">The launcher's variables are bad or the backend cannot start (the message says why).</exception>
    public static IProcessGroup Join(IProcessGroup? given, bool cuda, out bool created)
    {
        created = false;
        if (given is not null) return given;
        LaunchEnvironment launch = LaunchEnvironment.FromEnvironment();
        if (launch.WorldSize == 1 || DistributedRun.Current.WorldSize > 1) return DistributedRun.Current;
        IProcessGroup group = ProcessGroupFactory.Create(ProcessGroupOptions.FromEnvironment(cuda) with { Launch = launch });
        created = true;
        return group;
    }

    /// <summary>
    /// The minimum log level of a rank: everything on rank 0; warnings and errors only on the others (the reference's
    /// other ranks log nothing; here they still report their own failures, such as a timed-out collective).
    /// </summary>
    /// <param name="rank">The rank.</param>
    /// <returns>The level.</returns>
    public static LogLevel MinimumLogLevel(int rank) => rank == 0 ? LogLevel.Trace : LogLevel.Warning;
}
