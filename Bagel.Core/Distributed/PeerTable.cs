using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Bagel.Core.Distributed;

/// <summary>One rank's process: its host name and process id, exchanged when a process group starts.</summary>
/// <param name="Rank">The rank.</param>
/// <param name="Host">Its host name.</param>
/// <param name="ProcessId">Its process id on that host.</param>
public sealed record PeerInfo(int Rank, string Host, int ProcessId)
{
    /// <summary>Bytes of one encoded entry.</summary>
    public const int EncodedSize = 128;

    /// <summary>This process as rank <paramref name="rank"/>.</summary>
    public static PeerInfo Current(int rank) => new(rank, Environment.MachineName, Environment.ProcessId);

    /// <summary>Writes the entry into <paramref name="destination"/> (<see cref="EncodedSize"/> bytes).</summary>
    public void Encode(Span<byte> destination)
    {
        destination[..EncodedSize].Clear();
        BinaryPrimitives.WriteInt32LittleEndian(destination, ProcessId);
        byte[] host = Encoding.UTF8.GetBytes(Host);
        int length = Math.Min(host.Length, EncodedSize - 8);
        BinaryPrimitives.WriteInt32LittleEndian(destination[4..], length);
        host.AsSpan(0, length).CopyTo(destination[8..]);
    }

    /// <summary>Reads an entry written by <see cref="Encode"/>.</summary>
    public static PeerInfo Decode(int rank, ReadOnlySpan<byte> source)
    {
        int pid = BinaryPrimitives.ReadInt32LittleEndian(source);
        int length = Math.Clamp(BinaryPrimitives.ReadInt32LittleEndian(source[4..]), 0, EncodedSize - 8);
        return new PeerInfo(rank, Encoding.UTF8.GetString(source.Slice(8, length)), pid);
    }
}

/// <summary>The processes of every rank, to say which one is gone when a collective times out.</summary>
public sealed class PeerTable
{
    /// <summary>Creates the table from one entry per rank, in rank order.</summary>
    /// <param name="peers">The entries.</param>
    /// <param name="rank">This process's rank.</param>
    public PeerTable(IReadOnlyList<PeerInfo> peers, int rank)
    {
        ArgumentNullException.ThrowIfNull(peers);
        Peers = peers;
        Rank = rank;
    }

    /// <summary>Every rank's process, indexed by rank.</summary>
    public IReadOnlyList<PeerInfo> Peers { get; }

    /// <summary>This process's rank.</summary>
    public int Rank { get; }

    /// <summary>This rank's position among the ranks on its host, and how many there are.</summary>
    public (int LocalRank, int LocalWorldSize) Local()
    {
        string host = Peers[Rank].Host;
        int local = Peers.Take(Rank).Count(p => p.Host == host);
        return (local, Peers.Count(p => p.Host == host));
    }

    /// <summary>Whether rank <paramref name="rank"/>'s process is known to have ended (only ranks on this host can be checked).</summary>
    public bool HasExited(int rank)
    {
        PeerInfo peer = Peers[rank];
        if (peer.Host != Environment.MachineName || peer.ProcessId <= 0) return false;
        string stat = $"/proc/{peer.ProcessId.ToString(CultureInfo.InvariantCulture)}/stat";
        try
        {
            if (!File.Exists(stat)) return true;
            string text = File.ReadAllText(stat);
            int close = text.LastIndexOf(')');
            return close >= 0 && close + 2 < text.Length && text[close + 2] is 'Z' or 'X'; // zombie or dead
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>The explanation of a collective that failed with <paramref name="cause"/>, naming the other ranks whose processes on this host have ended.</summary>
    /// <param name="backend">The backend's name.</param>
    /// <param name="operation">The collective and its sequence number.</param>
    /// <param name="cause">The backend's error.</param>
    public DistributedException FailureError(string backend, string operation, string cause)
    {
        int[] dead = [.. Enumerable.Range(0, Peers.Count).Where(r => r != Rank && HasExited(r))];
        string who = dead.Length == 0
            ? "no other rank on this host has exited (a rank on another host may have)"
            : string.Join(", ", dead.Select(r => $"rank {r} (pid {Peers[r].ProcessId} on {Peers[r].Host})")) + (dead.Length == 1 ? " has exited" : " have exited");
        return new DistributedException($"{backend}: rank {Rank}: {operation} failed ({cause}): {who}. Stopping this rank.");
    }

    /// <summary>
    /// The explanation of a collective that timed out on this rank: the other ranks whose processes on this host have
    /// ended, else every other rank (one of them died on another host, hung, or called another collective).
    /// </summary>
    /// <param name="backend">The backend's name.</param>
    /// <param name="operation">The collective and its sequence number.</param>
    /// <param name="timeout">The timeout that passed.</param>
    public CollectiveTimeoutException TimeoutError(string backend, string operation, TimeSpan timeout)
    {
        int[] others = [.. Enumerable.Range(0, Peers.Count).Where(r => r != Rank)];
        int[] dead = [.. others.Where(HasExited)];
        string seconds = timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
        string message;
        if (dead.Length > 0)
        {
            string names = string.Join(", ", dead.Select(r => $"rank {r} (pid {Peers[r].ProcessId} on {Peers[r].Host})"));
            message = $"{backend}: rank {Rank}: {operation} did not complete within {seconds} s: {names} {(dead.Length == 1 ? "has" : "have")} exited. Stopping this rank.";
        }
        else
        {
            string names = string.Join(", ", others.Select(r => $"rank {r} (pid {Peers[r].ProcessId} on {Peers[r].Host})"));
            message = $"{backend}: rank {Rank}: {operation} did not complete within {seconds} s waiting for {names}: " +
                      "a rank died on another host, hung, or called a different collective. Stopping this rank.";
        }
        return new CollectiveTimeoutException(message, Rank, [.. dead, .. others.Except(dead)]);
    }
}
