using Bagel.Core.Distributed;
using Bagel.Tests.Infrastructure;
using TorchSharp;

namespace Bagel.Tests.Core.Distributed;

/// <summary>The MPI backend on 2 processes started by mpirun: every collective, half precision, byte gathering.</summary>
public sealed class MpiProcessGroupTests
{
    private const string ChildVariable = "BAGEL_TEST_MPI_COLLECTIVES";

    [Fact]
    public void CollectivesOnTwoRanks()
    {
        using var folder = new TempDirectory("bagel-mpi-");
        var (result, _) = MpiRun.Run(typeof(MpiProcessGroupTests), nameof(ChildChecksTheCollectives), 2,
            new Dictionary<string, string> { [ChildVariable] = folder.Path }, TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, $"mpirun failed ({result.ExitCode}):\n{result.Combined}");
        Assert.Equal("ok", File.ReadAllText(Path.Combine(folder.Path, "rank0.txt")));
        Assert.Equal("ok", File.ReadAllText(Path.Combine(folder.Path, "rank1.txt")));
    }

    [Fact]
    public void SingleProcessGroupLeavesValuesAndCopiesChunks()
    {
        IProcessGroup group = SingleProcessGroup.Instance;
        using torch.Tensor values = torch.tensor(new float[] { 1, 2, 3 });
        group.AllReduce(values, ReduceOp.Avg);
        group.Broadcast(values);
        group.Barrier();
        Assert.Equal([1f, 2f, 3f], values.data<float>().ToArray());
        using torch.Tensor output = torch.zeros(3);
        group.ReduceScatter(values, output);
        Assert.Equal([1f, 2f, 3f], output.data<float>().ToArray());
        Assert.Equal((0, 1, 0, 1), (group.Rank, group.WorldSize, group.LocalRank, group.LocalWorldSize));
    }

    [Fact]
    public void ChildChecksTheCollectives()
    {
        string? folder = Environment.GetEnvironmentVariable(ChildVariable);
        if (folder is null) Assert.Skip($"Runs only under mpirun, from {nameof(CollectivesOnTwoRanks)}.");
        using var group = new MpiProcessGroup(TimeSpan.FromSeconds(60));
        int r = group.Rank;
        Assert.Equal((2, r, 2), (group.WorldSize, group.LocalRank, group.LocalWorldSize));

        using torch.Tensor sum = torch.tensor(new float[] { 1 + r, 10 * (r + 1) });
        group.AllReduce(sum);
        Assert.Equal([3f, 30f], sum.data<float>().ToArray());
        using torch.Tensor avg = torch.tensor(new double[] { r, 4 });
        group.AllReduce(avg, ReduceOp.Avg);
        Assert.Equal([0.5, 4.0], avg.data<double>().ToArray());
        using torch.Tensor max = torch.tensor(new long[] { r == 0 ? 7 : -2, r });
        group.AllReduce(max, ReduceOp.Max);
        Assert.Equal([7L, 1L], max.data<long>().ToArray());
        using torch.Tensor half = torch.tensor(new float[] { 0.5f + r, 1 }).to(torch.ScalarType.BFloat16);
        group.AllReduce(half);
        Assert.Equal([2f, 2f], half.to(torch.ScalarType.Float32).data<float>().ToArray());

        // Reduce-scatter: 4 elements, rank r keeps chunk r of the sum; all-gather puts the chunks back in rank order.
        using torch.Tensor full = torch.tensor(new float[] { 1, 2, 3, 4 }).mul(r + 1);
        using torch.Tensor mine = torch.zeros(2);
        group.ReduceScatter(full, mine);
        Assert.Equal(r == 0 ? [3f, 6f] : [9f, 12f], mine.data<float>().ToArray());
        using torch.Tensor gathered = torch.zeros(4);
        group.AllGather(mine, gathered);
        Assert.Equal([3f, 6f, 9f, 12f], gathered.data<float>().ToArray());

        using torch.Tensor broadcast = torch.full(3, r == 1 ? 5.0f : -1.0f);
        group.Broadcast(broadcast, root: 1);
        Assert.Equal([5f, 5f, 5f], broadcast.data<float>().ToArray());
        group.Barrier();

        byte[][] bytes = group.AllGatherBytes(r == 0 ? [1, 2, 3] : [9]);
        Assert.Equal([1, 2, 3], bytes[0]);
        Assert.Equal([9], bytes[1]);
        Assert.True(group.AnyRank(r == 1));
        Assert.False(group.AnyRank(false));

        var error = Assert.Throws<ArgumentException>(() => group.AllReduce(torch.zeros(4, 4).t()));
        Assert.Contains("not contiguous", error.Message, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(folder, $"rank{r}.txt"), "ok");
    }
}
