using Bagel.Core.Devices;
using Bagel.Core.Distributed;
using Bagel.Tests.Infrastructure;
using TorchSharp;

namespace Bagel.Tests.Core.Distributed;

/// <summary>
/// Sub-groups (<see cref="IProcessGroup.Split"/>, <see cref="SubGroupExtensions.CreateHybridShardGroups"/>): the
/// split plan, the single-process group, and the MPI backend on 4 processes started by one mpirun.
/// </summary>
public sealed class SubGroupTests
{
    private const string ChildVariable = "BAGEL_TEST_MPI_SUBGROUPS";

    [Fact]
    public void Plan_GroupsByColor_OrdersByKeyThenRank()
    {
        // (color, key) of ranks 0..4.
        long[] pairs = [1, 0, 0, 5, 1, 0, 0, 2, 1, -1];
        SubGroupPlan plan = SubGroupPlan.Plan(pairs, parentRank: 2);
        Assert.Equal([4, 0, 2], plan.ParentRanks);
        Assert.Equal((2, 3), (plan.Rank, plan.Size));
        SubGroupPlan other = SubGroupPlan.Plan(pairs, parentRank: 1);
        Assert.Equal([3, 1], other.ParentRanks);
        Assert.Equal((1, 2), (other.Rank, other.Size));
    }

    [Fact]
    public void SingleProcessGroup_SplitsIntoItself_AndChecksArguments()
    {
        using HybridShardGroups groups = SingleProcessGroup.Instance.CreateHybridShardGroups(1);
        Assert.Same(SingleProcessGroup.Instance, groups.Shard);
        Assert.Same(SingleProcessGroup.Instance, groups.Replicate);
        Assert.Throws<ArgumentOutOfRangeException>(() => SingleProcessGroup.Instance.CreateHybridShardGroups(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => SingleProcessGroup.Instance.Split(-1, 0));
        // Still usable after the sub-groups were disposed.
        using torch.Tensor values = torch.tensor(new float[] { 1, 2 });
        SingleProcessGroup.Instance.AllReduce(values);
        Assert.Equal([1f, 2f], values.data<float>().ToArray());
    }

    [Fact]
    public void MpiSubGroupsOnFourRanks()
    {
        using var folder = new TempDirectory("bagel-mpi-split-");
        var (result, _) = MpiRun.Run(typeof(SubGroupTests), nameof(ChildChecksTheSubGroups), 4,
            new Dictionary<string, string> { [ChildVariable] = folder.Path }, TimeSpan.FromMinutes(3));
        Assert.True(result.ExitCode == 0, $"mpirun failed ({result.ExitCode}):\n{result.Combined}");
        for (int r = 0; r < 4; r++) Assert.Equal("ok", File.ReadAllText(Path.Combine(folder.Path, $"rank{r}.txt")));
    }

    private const string KillVariable = "BAGEL_TEST_MPI_SUBGROUP_KILL";

    [Fact]
    public void MpiSubGroup_ARankThatDiesMakesTheOtherTimeOutNamingIt()
    {
        using var folder = new TempDirectory("bagel-mpi-split-kill-");
        // --enable-recovery: the survivor runs on (plain mpirun would end the job itself).
        var (result, _) = MpiRun.Run(typeof(SubGroupTests), nameof(ChildDiesInASubGroup), 2,
            new Dictionary<string, string> { [KillVariable] = folder.Path }, TimeSpan.FromMinutes(2), enableRecovery: true);
        string errorFile = Path.Combine(folder.Path, "error-rank0.txt");
        Assert.True(File.Exists(errorFile), $"Rank 0 reported no error:\n{result.Combined}");
        string error = File.ReadAllText(errorFile);
        Assert.StartsWith("CollectiveTimeoutException: mpi sub-group 0 (world ranks 1, 0): rank 1: barrier #", error, StringComparison.Ordinal);
        Assert.Contains("rank 0 (pid", error, StringComparison.Ordinal); // rank 0 of the sub-group is world rank 1
        Assert.Contains("has exited", error, StringComparison.Ordinal);
    }

    [Fact]
    public void ChildDiesInASubGroup()
    {
        string? folder = Environment.GetEnvironmentVariable(KillVariable);
        if (folder is null) Assert.Skip($"Runs only under mpirun, from {nameof(MpiSubGroup_ARankThatDiesMakesTheOtherTimeOutNamingIt)}.");
        var world = new MpiProcessGroup(TimeSpan.FromSeconds(4));
        IProcessGroup reversed = world.Split(0, -world.Rank);
        if (world.Rank == 1) System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL, as a crashed node
        Thread.Sleep(500);
        var error = Assert.Throws<CollectiveTimeoutException>(() => reversed.Barrier());
        File.WriteAllText(Path.Combine(folder, "error-rank0.txt"), $"{nameof(CollectiveTimeoutException)}: {error.Message}");
        Assert.Throws<DistributedException>(() => world.Barrier()); // the failure is shared: MPI is not used again
        reversed.Dispose();
        world.Dispose();
    }

    private static float[] Floats(torch.Tensor t) => t.to(torch.ScalarType.Float32).data<float>().ToArray();

    [Fact]
    public void ChildChecksTheSubGroups()
    {
        string? folder = Environment.GetEnvironmentVariable(ChildVariable);
        if (folder is null) Assert.Skip($"Runs only under mpirun, from {nameof(MpiSubGroupsOnFourRanks)}.");
        using var world = new MpiProcessGroup(TimeSpan.FromSeconds(60));
        int r = world.Rank;
        Assert.Equal(4, world.WorldSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => world.CreateHybridShardGroups(3)); // checked before any collective

        // HYBRID_SHARD with num_shard 2: shard groups {0,1}, {2,3}; replicate groups {0,2}, {1,3}.
        using (HybridShardGroups hybrid = world.CreateHybridShardGroups(2))
        {
            IProcessGroup shard = hybrid.Shard, replicate = hybrid.Replicate;
            int g = r / 2, i = r % 2;
            Assert.Equal((i, 2, "mpi"), (shard.Rank, shard.WorldSize, shard.Backend));
            Assert.Equal((g, 2), (replicate.Rank, replicate.WorldSize));
            Assert.Equal((world.LocalRank, world.LocalWorldSize), (shard.LocalRank, shard.LocalWorldSize));
            Assert.Equal(world.Timeout, shard.Timeout);
            Assert.Equal([2 * g, 2 * g + 1], ((MpiProcessGroup)shard).WorldRanks);
            Assert.Equal([i, i + 2], ((MpiProcessGroup)replicate).WorldRanks);

            using torch.Tensor a = torch.tensor(new float[] { r, 1 });
            shard.AllReduce(a);
            Assert.Equal([4f * g + 1, 2f], Floats(a));
            using torch.Tensor b = torch.tensor(new double[] { r, 10 });
            replicate.AllReduce(b, ReduceOp.Avg);
            Assert.Equal([i + 1.0, 10.0], b.data<double>().ToArray());
            using torch.Tensor half = torch.tensor(new float[] { 0.5f * r }).to(torch.ScalarType.BFloat16);
            replicate.AllReduce(half, ReduceOp.Max);
            Assert.Equal([0.5f * (i + 2)], Floats(half));

            // Reduce-scatter over the shard group (factor (2g+1) + (2g+2)), then all-gather it back.
            using torch.Tensor full = torch.tensor(new float[] { 1, 2, 3, 4 }).mul(r + 1);
            using torch.Tensor chunk = torch.zeros(2);
            shard.ReduceScatter(full, chunk);
            float f = 4 * g + 3;
            Assert.Equal(i == 0 ? [f, 2 * f] : [3 * f, 4 * f], Floats(chunk));
            using torch.Tensor gathered = torch.zeros(4);
            shard.AllGather(chunk, gathered);
            Assert.Equal([f, 2 * f, 3 * f, 4 * f], Floats(gathered));
            using torch.Tensor replicas = torch.zeros(2, torch.ScalarType.Int64);
            using torch.Tensor mine = torch.tensor(new long[] { r });
            replicate.AllGather(mine, replicas);
            Assert.Equal([(long)i, i + 2L], replicas.data<long>().ToArray());
            using torch.Tensor broadcast = torch.full(2, (float)r);
            replicate.Broadcast(broadcast, root: 1);
            Assert.Equal([i + 2f, i + 2f], Floats(broadcast));
            shard.Barrier();
            replicate.Barrier();
            Assert.Equal([[1, (byte)r]], shard.AllGatherBytes([1, (byte)r]).Skip(i).Take(1));
        }

        // One group ordered by a reversed key; unequal groups {0} and {1,2,3}; a sub-group of a sub-group.
        using (IProcessGroup reversed = world.Split(0, -r))
        {
            Assert.Equal((3 - r, 4), (reversed.Rank, reversed.WorldSize));
            using torch.Tensor ranks = torch.zeros(4, torch.ScalarType.Int64);
            using torch.Tensor mine = torch.tensor(new long[] { r });
            reversed.AllGather(mine, ranks);
            Assert.Equal([3L, 2L, 1L, 0L], ranks.data<long>().ToArray());
        }
        using (IProcessGroup uneven = world.Split(r == 0 ? 0 : 1, 0))
        {
            Assert.Equal(r == 0 ? (0, 1) : (r - 1, 3), (uneven.Rank, uneven.WorldSize));
            using torch.Tensor sum = torch.tensor(new float[] { r });
            uneven.AllReduce(sum);
            Assert.Equal([r == 0 ? 0f : 6f], Floats(sum));
            using IProcessGroup inner = uneven.Split(uneven.Rank == 0 ? 0 : 1, 0); // {0}; {1}; {2, 3}
            Assert.Equal(r >= 2 ? [2, 3] : [r], ((MpiProcessGroup)inner).WorldRanks);
            using torch.Tensor innerSum = torch.tensor(new float[] { r });
            inner.AllReduce(innerSum);
            Assert.Equal([r >= 2 ? 5f : r], Floats(innerSum));
        }

        // Every rank's peak RSS (the helper for per-rank memory reports), over the world and over a sub-group.
        long[] peaks = ProcessMemory.GatherPeaks(world);
        Assert.Equal(4, peaks.Length);
        Assert.All(peaks, p => Assert.True(p > 10 << 20, $"peak {p}"));
        Assert.InRange(peaks[r], 1, ProcessMemory.PeakResidentBytes());
        using (IProcessGroup pair = world.Split(r / 2, r))
        {
            long[] pairPeaks = ProcessMemory.GatherPeaks(pair);
            Assert.Equal(2, pairPeaks.Length);
            Assert.InRange(pairPeaks[r % 2], peaks[r], ProcessMemory.PeakResidentBytes());
        }

        // After its sub-groups are disposed the world still works; a sub-group left open refuses use once MPI is finalised.
        using torch.Tensor total = torch.tensor(new float[] { r });
        world.AllReduce(total);
        Assert.Equal([6f], Floats(total));
        IProcessGroup leftOpen = world.Split(r % 2, r);
        world.Dispose();
        var error = Assert.Throws<DistributedException>(() => leftOpen.Barrier());
        Assert.Contains("finalised", error.Message, StringComparison.Ordinal);
        leftOpen.Dispose();
        File.WriteAllText(Path.Combine(folder, $"rank{r}.txt"), "ok");
    }
}
