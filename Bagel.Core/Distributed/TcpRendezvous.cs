using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Bagel.Core.Distributed;

/// <summary>
/// torchrun's rendezvous convention in small: rank 0 listens at <c>MASTER_ADDR:MASTER_PORT</c>, every other rank
/// connects and sends its rank, world size, host and process id; once all have arrived, rank 0 sends each of them a
/// payload (NCCL's 128-byte unique id) and the table of every rank's process. Used once, when an NCCL group starts.
/// </summary>
public static class TcpRendezvous
{
    private const ulong Magic = 0x31565244_4C454741; // "AGELRDV1"
    private const int Version = 1;

    /// <summary>The result: rank 0's payload and every rank's process.</summary>
    /// <param name="Payload">What rank 0 sent.</param>
    /// <param name="Peers">Every rank's host and pid, in rank order.</param>
    public sealed record Result(byte[] Payload, IReadOnlyList<PeerInfo> Peers);

    /// <summary>Runs the rendezvous for this rank.</summary>
    /// <param name="launch">Rank, world, address and port.</param>
    /// <param name="payload">Rank 0's payload (ignored on other ranks; null there).</param>
    /// <param name="timeout">How long to wait for every rank (or for rank 0 to listen).</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The payload and the peer table.</returns>
    /// <exception cref="DistributedException">A rank did not arrive in time, or sent a different world size or a duplicate rank.</exception>
    public static async Task<Result> ExchangeAsync(LaunchEnvironment launch, byte[]? payload, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(launch);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        PeerInfo me = PeerInfo.Current(launch.Rank);
        try
        {
            return launch.Rank == 0
                ? await ServeAsync(launch, payload ?? throw new ArgumentNullException(nameof(payload)), me, deadline.Token).ConfigureAwait(false)
                : await JoinAsync(launch, me, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DistributedException($"Rendezvous at {launch.MasterAddress}:{launch.MasterPort}: rank {launch.Rank} timed out after {timeout.TotalSeconds:0} s " +
                                           (launch.Rank == 0 ? "waiting for the other ranks to connect." : "waiting for rank 0 (is MASTER_ADDR rank 0's host, and the port open?)."));
        }
    }

    private static async Task<Result> ServeAsync(LaunchEnvironment launch, byte[] payload, PeerInfo me, CancellationToken token)
    {
        var listener = new TcpListener(IPAddress.IPv6Any, launch.MasterPort);
        listener.Server.DualMode = true;
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        try
        {
            listener.Start(launch.WorldSize);
        }
        catch (SocketException e)
        {
            throw new DistributedException($"Rendezvous: rank 0 cannot listen on port {launch.MasterPort} ({e.Message}); pick a free MASTER_PORT.", e);
        }
        var clients = new TcpClient?[launch.WorldSize];
        var peers = new PeerInfo?[launch.WorldSize];
        peers[0] = me;
        try
        {
            for (int arrived = 1; arrived < launch.WorldSize; arrived++)
            {
                TcpClient client;
                try
                {
                    client = await listener.AcceptTcpClientAsync(token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    int[] missing = [.. Enumerable.Range(1, launch.WorldSize - 1).Where(r => peers[r] is null)];
                    throw new DistributedException($"Rendezvous at {launch.MasterAddress}:{launch.MasterPort}: rank(s) {string.Join(", ", missing)} did not connect in time.");
                }
                NetworkStream stream = client.GetStream();
                byte[] hello = new byte[8 + 4 + 4 + 4 + PeerInfo.EncodedSize];
                await stream.ReadExactlyAsync(hello, token).ConfigureAwait(false);
                if (BinaryPrimitives.ReadUInt64LittleEndian(hello) != Magic || BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(8)) != Version)
                {
                    client.Dispose();
                    arrived--; // not one of ours (a port scanner, another job): ignore it
                    continue;
                }
                int world = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(12)), rank = BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(16));
                if (world != launch.WorldSize)
                    throw new DistributedException($"Rendezvous: rank {rank} has WORLD_SIZE {world}, rank 0 has {launch.WorldSize}; every rank needs the same.");
                if (rank <= 0 || rank >= world || peers[rank] is not null)
                    throw new DistributedException($"Rendezvous: a process connected as rank {rank}, which is {(rank <= 0 || rank >= world ? "outside 1.." + (world - 1) : "taken already")}; check RANK.");
                peers[rank] = PeerInfo.Decode(rank, hello.AsSpan(20));
                clients[rank] = client;
            }
            byte[] reply = EncodeReply(payload, [.. peers.Select(p => p!)]);
            for (int r = 1; r < launch.WorldSize; r++) await clients[r]!.GetStream().WriteAsync(reply, token).ConfigureAwait(false);
            return new Result(payload, [.. peers.Select(p => p!)]);
        }
        finally
        {
            foreach (TcpClient? client in clients) client?.Dispose();
            listener.Stop();
        }
    }

    private static async Task<Result> JoinAsync(LaunchEnvironment launch, PeerInfo me, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            using var client = new TcpClient(AddressFamily.InterNetworkV6) { NoDelay = true };
            client.Client.DualMode = true;
            try
            {
                await client.ConnectAsync(launch.MasterAddress, launch.MasterPort, token).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(500, 20 + clock.ElapsedMilliseconds / 10)), token).ConfigureAwait(false);
                continue; // rank 0 is not listening yet
            }
            NetworkStream stream = client.GetStream();
            byte[] hello = new byte[8 + 4 + 4 + 4 + PeerInfo.EncodedSize];
            BinaryPrimitives.WriteUInt64LittleEndian(hello, Magic);
            BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(8), Version);
            BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(12), launch.WorldSize);
            BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(16), launch.Rank);
            me.Encode(hello.AsSpan(20));
            await stream.WriteAsync(hello, token).ConfigureAwait(false);
            byte[] head = new byte[12];
            await stream.ReadExactlyAsync(head, token).ConfigureAwait(false);
            if (BinaryPrimitives.ReadUInt64LittleEndian(head) != Magic)
                throw new DistributedException($"Rendezvous: {launch.MasterAddress}:{launch.MasterPort} answered with something other than Bagel's rendezvous; is another service on MASTER_PORT?");
            byte[] payload = new byte[BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(8))];
            await stream.ReadExactlyAsync(payload, token).ConfigureAwait(false);
            byte[] table = new byte[4 + launch.WorldSize * PeerInfo.EncodedSize];
            await stream.ReadExactlyAsync(table, token).ConfigureAwait(false);
            var peers = new PeerInfo[launch.WorldSize];
            for (int r = 0; r < peers.Length; r++) peers[r] = PeerInfo.Decode(r, table.AsSpan(4 + r * PeerInfo.EncodedSize, PeerInfo.EncodedSize));
            return new Result(payload, peers);
        }
    }

    private static byte[] EncodeReply(byte[] payload, PeerInfo[] peers)
    {
        byte[] reply = new byte[12 + payload.Length + 4 + peers.Length * PeerInfo.EncodedSize];
        BinaryPrimitives.WriteUInt64LittleEndian(reply, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(reply.AsSpan(8), payload.Length);
        payload.CopyTo(reply.AsSpan(12));
        int at = 12 + payload.Length;
        BinaryPrimitives.WriteInt32LittleEndian(reply.AsSpan(at), peers.Length);
        for (int r = 0; r < peers.Length; r++) peers[r].Encode(reply.AsSpan(at + 4 + r * PeerInfo.EncodedSize, PeerInfo.EncodedSize));
        return reply;
    }
}
