using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bagel.Core.Distributed;
using Bagel.Tests.Infrastructure;
using TorchSharp;

namespace Bagel.Tests.Core.Distributed;

/// <summary>The NCCL backend's parts that need no GPU: dtype mapping, pointer arithmetic, the TCP rendezvous, the library probe.</summary>
public sealed class NcclTests
{
    private const string ChildVariable = "BAGEL_TEST_RENDEZVOUS_CHILD";

    [Theory]
    [InlineData(torch.ScalarType.Float32, NcclDataType.Float32)]
    [InlineData(torch.ScalarType.Float64, NcclDataType.Float64)]
    [InlineData(torch.ScalarType.Float16, NcclDataType.Float16)]
    [InlineData(torch.ScalarType.BFloat16, NcclDataType.BFloat16)]
    [InlineData(torch.ScalarType.Int64, NcclDataType.Int64)]
    [InlineData(torch.ScalarType.Int32, NcclDataType.Int32)]
    [InlineData(torch.ScalarType.Int8, NcclDataType.Int8)]
    [InlineData(torch.ScalarType.Byte, NcclDataType.UInt8)]
    [InlineData(torch.ScalarType.Bool, NcclDataType.UInt8)]
    public void DTypesMapToNcclsEnum(torch.ScalarType type, NcclDataType expected) => Assert.Equal(expected, NcclTypes.DataType(type));

    [Fact]
    public void UnsupportedDTypeAndReductionsAreNamed()
    {
        var error = Assert.Throws<ArgumentException>(() => NcclTypes.DataType(torch.ScalarType.ComplexFloat32));
        Assert.Contains("ComplexFloat32", error.Message, StringComparison.Ordinal);
        Assert.Equal((0, 2, 4), (NcclTypes.RedOp(ReduceOp.Sum), NcclTypes.RedOp(ReduceOp.Max), NcclTypes.RedOp(ReduceOp.Avg)));
        Assert.Equal(7, (int)NcclDataType.Float32);
        Assert.Equal(9, (int)NcclDataType.BFloat16);
    }

    [Fact]
    public void OffsetsAreElementsTimesElementSizeAndMatchLibtorchsViews()
    {
        Assert.Equal((IntPtr)(0x1000 + 5 * 2), NcclTypes.Offset(0x1000, 5, torch.ScalarType.BFloat16));
        Assert.Equal((IntPtr)(0x1000 + 3 * 8), NcclTypes.Offset(0x1000, 3, torch.ScalarType.Float64));
        Assert.Throws<ArgumentOutOfRangeException>(() => NcclTypes.Offset(0x1000, -1, torch.ScalarType.Float32));
        using torch.Tensor flat = torch.zeros(100, torch.ScalarType.Float32);
        using torch.Tensor chunk = flat.narrow(0, 25, 25);
        IntPtr basePointer = NcclTypes.DataPointer(flat);
        Assert.Equal(NcclTypes.Offset(basePointer, 25, torch.ScalarType.Float32), NcclTypes.DataPointer(chunk));
        using torch.Tensor halves = torch.zeros(64, torch.ScalarType.BFloat16);
        using torch.Tensor shard = halves.narrow(0, 48, 16);
        Assert.Equal(NcclTypes.Offset(NcclTypes.DataPointer(halves), 48, torch.ScalarType.BFloat16), NcclTypes.DataPointer(shard));
    }

    [Fact]
    public void ProbeNamesWhatToInstallWhenNcclIsAbsent()
    {
        Assert.False(NcclProbe.TryLoad("libnccl-not-here.so.2", out _, out string? error));
        Assert.Contains("libnccl-not-here.so.2 was not found", error, StringComparison.Ordinal);
        Assert.Contains("libnccl2", error, StringComparison.Ordinal);
        Assert.Contains("BAGEL_NCCL_LIBRARY", error, StringComparison.Ordinal);
        if (NcclProbe.TryLoad(out string? real)) return; // this machine has NCCL: nothing more to check
        Assert.Contains("libnccl.so.2", real, StringComparison.Ordinal);
        var create = Assert.Throws<DistributedException>(() => ProcessGroupFactory.Create(new ProcessGroupOptions
        {
            Backend = DistributedBackend.Nccl, Cuda = true, Launch = new LaunchEnvironment(LaunchKind.Torchrun, 0, 2, 0, 2, "127.0.0.1", 29500),
        }));
        Assert.Contains("apt-get install libnccl2", create.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RendezvousSendsRankZerosIdAndThePeerTableToAnotherProcess()
    {
        using var folder = new TempDirectory("bagel-rendezvous-");
        int port = FreePort();
        byte[] id = [.. Enumerable.Range(0, 128).Select(i => (byte)(i * 7 + 3))];
        List<string> command = MpiRun.TestMethodCommand(typeof(NcclTests), nameof(ChildJoinsTheRendezvousAsRankOne));
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in command.Skip(1)) start.ArgumentList.Add(argument);
        start.Environment[ChildVariable] = folder.Path;
        start.Environment["MASTER_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using Process child = Process.Start(start)!;
        Task<string> output = child.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        Task<string> errors = child.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);

        TcpRendezvous.Result result = await TcpRendezvous.ExchangeAsync(new LaunchEnvironment(LaunchKind.Torchrun, 0, 2, 0, 2, "127.0.0.1", port), id, TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        await child.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        Assert.True(child.ExitCode == 0, $"The rank-1 child failed:\n{await output}\n{await errors}");
        Assert.Equal(id, await File.ReadAllBytesAsync(Path.Combine(folder.Path, "id.bin"), TestContext.Current.CancellationToken));
        Assert.Equal(child.Id, result.Peers[1].ProcessId);
        Assert.Equal(Environment.ProcessId, result.Peers[0].ProcessId);
        Assert.Equal($"{Environment.ProcessId} {child.Id}", await File.ReadAllTextAsync(Path.Combine(folder.Path, "peers.txt"), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task RendezvousTimeoutNamesTheMissingRank()
    {
        var error = await Assert.ThrowsAsync<DistributedException>(() =>
            TcpRendezvous.ExchangeAsync(new LaunchEnvironment(LaunchKind.Torchrun, 0, 3, 0, 3, "127.0.0.1", FreePort()), new byte[128], TimeSpan.FromMilliseconds(300), TestContext.Current.CancellationToken));
        Assert.Contains("rank(s) 1, 2 did not connect", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChildJoinsTheRendezvousAsRankOne()
    {
        string? folder = Environment.GetEnvironmentVariable(ChildVariable);
        if (folder is null) Assert.Skip($"Runs only as the child of {nameof(RendezvousSendsRankZerosIdAndThePeerTableToAnotherProcess)}.");
        int port = int.Parse(Environment.GetEnvironmentVariable("MASTER_PORT")!, System.Globalization.CultureInfo.InvariantCulture);
        TcpRendezvous.Result result = await TcpRendezvous.ExchangeAsync(new LaunchEnvironment(LaunchKind.Torchrun, 1, 2, 1, 2, "127.0.0.1", port), null, TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(Path.Combine(folder, "id.bin"), result.Payload, TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(Path.Combine(folder, "peers.txt"), $"{result.Peers[0].ProcessId} {result.Peers[1].ProcessId}", TestContext.Current.CancellationToken);
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
