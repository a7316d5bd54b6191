using Bagel.Training.Distributed;

namespace Bagel.Tests.Training.Distributed;

public sealed class LocalLauncherTests
{
    [Fact]
    public void SplitsTorchrunsFlagsFromTheTrainingFlags()
    {
        string? error = LocalLauncher.Parse(["--nproc_per_node", "4", "--nnodes=2", "--node-rank", "1", "--master_addr", "10.0.0.7", "--master-port=29611", "--lr", "1e-4", "--standalone"],
            out LauncherRequest? request, out IReadOnlyList<string> rest);
        Assert.Null(error);
        Assert.Equal(new LauncherRequest(4, 2, 1, "10.0.0.7", 29611), request);
        Assert.Equal(["--lr", "1e-4"], rest);
    }

    [Fact]
    public void NoLauncherFlagsMeansNoLauncher()
    {
        Assert.Null(LocalLauncher.Parse(["--lr", "1e-4"], out LauncherRequest? request, out IReadOnlyList<string> rest));
        Assert.Null(request);
        Assert.Equal(["--lr", "1e-4"], rest);
    }

    [Theory]
    [InlineData(new[] { "--nnodes", "2" }, "--nproc_per_node N is needed")]
    [InlineData(new[] { "--nproc_per_node", "zero" }, "--nproc_per_node is 'zero'")]
    [InlineData(new[] { "--nproc_per_node", "2", "--nnodes", "2", "--node_rank", "2" }, "--node_rank is 2 but --nnodes is 2")]
    [InlineData(new[] { "--nproc_per_node=2", "--rdzv_backend=c10d" }, "--rdzv_backend: Bagel.Train's launcher has no elastic rendezvous")]
    [InlineData(new[] { "--nproc_per_node" }, "--nproc_per_node needs a value")]
    public void BadLauncherFlagsAreNamed(string[] args, string expected)
    {
        string? error = LocalLauncher.Parse(args, out _, out _);
        Assert.NotNull(error);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }
}
