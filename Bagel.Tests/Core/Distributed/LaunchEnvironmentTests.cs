using Bagel.Core.Distributed;

namespace Bagel.Tests.Core.Distributed;

public sealed class LaunchEnvironmentTests
{
    private static LaunchEnvironment Read(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return LaunchEnvironment.From(name => map.GetValueOrDefault(name));
    }

    [Fact]
    public void NoLauncherIsRankZeroOfOne()
    {
        LaunchEnvironment launch = Read();
        Assert.Equal((LaunchKind.None, 0, 1, 0, 1, "127.0.0.1", 29500), (launch.Kind, launch.Rank, launch.WorldSize, launch.LocalRank, launch.LocalWorldSize, launch.MasterAddress, launch.MasterPort));
    }

    [Fact]
    public void TorchrunVariablesMap()
    {
        LaunchEnvironment launch = Read(("RANK", "11"), ("WORLD_SIZE", "16"), ("LOCAL_RANK", "3"), ("LOCAL_WORLD_SIZE", "8"), ("MASTER_ADDR", "node07"), ("MASTER_PORT", "29611"));
        Assert.Equal((LaunchKind.Torchrun, 11, 16, 3, 8, "node07", 29611), (launch.Kind, launch.Rank, launch.WorldSize, launch.LocalRank, launch.LocalWorldSize, launch.MasterAddress, launch.MasterPort));
    }

    [Fact]
    public void OpenMpiVariablesMap()
    {
        LaunchEnvironment launch = Read(("OMPI_COMM_WORLD_RANK", "5"), ("OMPI_COMM_WORLD_SIZE", "6"), ("OMPI_COMM_WORLD_LOCAL_RANK", "2"), ("OMPI_COMM_WORLD_LOCAL_SIZE", "3"));
        Assert.Equal((LaunchKind.OpenMpi, 5, 6, 2, 3), (launch.Kind, launch.Rank, launch.WorldSize, launch.LocalRank, launch.LocalWorldSize));
    }

    [Fact]
    public void SlurmVariablesMapWithCompressedTaskCountsAndTheFirstNodeAsMaster()
    {
        LaunchEnvironment launch = Read(("SLURM_PROCID", "6"), ("SLURM_NTASKS", "7"), ("SLURM_LOCALID", "0"), ("SLURM_NODEID", "3"),
            ("SLURM_TASKS_PER_NODE", "2(x3),1"), ("SLURM_JOB_NODELIST", "gpu[003-006]"));
        Assert.Equal((LaunchKind.Slurm, 6, 7, 0, 1, "gpu003", 29500), (launch.Kind, launch.Rank, launch.WorldSize, launch.LocalRank, launch.LocalWorldSize, launch.MasterAddress, launch.MasterPort));
        Assert.Equal(2, LaunchEnvironment.TasksOnNode("2(x3),1", 2));
        Assert.Equal("login1", LaunchEnvironment.FirstHost("login1,gpu[1-2]"));
        Assert.Equal("a", LaunchEnvironment.FirstHost("a"));
    }

    [Fact]
    public void TorchrunWinsOverOpenMpiWhichWinsOverSlurm()
    {
        (string, string)[] slurm = [("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4")];
        (string, string)[] ompi = [("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "2")];
        // mpirun inside an sbatch script: the batch step's SLURM_PROCID=0 is in every rank's environment.
        Assert.Equal(LaunchKind.OpenMpi, Read([.. slurm, .. ompi]).Kind);
        Assert.Equal(LaunchKind.Torchrun, Read([.. slurm, .. ompi, ("RANK", "0"), ("WORLD_SIZE", "2")]).Kind);
        Assert.Equal(LaunchKind.Slurm, Read(slurm).Kind);
    }

    [Theory]
    [InlineData("RANK", "two", "RANK is 'two'")]
    [InlineData("RANK", "4", "rank 4 but world size 4")]
    [InlineData("MASTER_PORT", "70000", "MASTER_PORT is 70000")]
    public void BadValuesAreNamed(string name, string value, string expected)
    {
        var map = new Dictionary<string, string> { ["RANK"] = "0", ["WORLD_SIZE"] = "4", [name] = value };
        var error = Assert.Throws<DistributedException>(() => LaunchEnvironment.From(n => map.GetValueOrDefault(n)));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}

public sealed class ProcessGroupFactoryTests
{
    private static readonly LaunchEnvironment TwoRanks = new(LaunchKind.OpenMpi, 0, 2, 0, 2, "127.0.0.1", 29500);

    [Fact]
    public void BackendIsNoneForOneProcessMpiOnCpuNcclOnCudaUnlessChosen()
    {
        Assert.Null(ProcessGroupFactory.Choose(new ProcessGroupOptions(), LaunchEnvironment.Single));
        Assert.Equal(DistributedBackend.Mpi, ProcessGroupFactory.Choose(new ProcessGroupOptions(), TwoRanks));
        Assert.Equal(DistributedBackend.Nccl, ProcessGroupFactory.Choose(new ProcessGroupOptions { Cuda = true }, TwoRanks));
        Assert.Equal(DistributedBackend.Mpi, ProcessGroupFactory.Choose(new ProcessGroupOptions { Cuda = true, Backend = DistributedBackend.Mpi }, TwoRanks));
        Assert.Same(SingleProcessGroup.Instance, ProcessGroupFactory.Create(new ProcessGroupOptions { Launch = LaunchEnvironment.Single }));
    }

    [Fact]
    public void MismatchedLauncherAndBackendAreExplained()
    {
        var torchrun = Assert.Throws<DistributedException>(() => ProcessGroupFactory.Create(new ProcessGroupOptions { Launch = TwoRanks with { Kind = LaunchKind.Torchrun } }));
        Assert.Contains("started by torchrun", torchrun.Message, StringComparison.Ordinal);
        Assert.Contains("mpirun -n N", torchrun.Message, StringComparison.Ordinal);
        var ncclOnCpu = Assert.Throws<DistributedException>(() => ProcessGroupFactory.Create(new ProcessGroupOptions { Backend = DistributedBackend.Nccl, Launch = TwoRanks }));
        Assert.Contains("NCCL reduces CUDA tensors", ncclOnCpu.Message, StringComparison.Ordinal);
    }
}
