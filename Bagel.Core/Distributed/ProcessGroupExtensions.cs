using TorchSharp;

namespace Bagel.Core.Distributed;

/// <summary>Collectives on plain values, built on <see cref="IProcessGroup"/>'s tensor collectives.</summary>
public static class ProcessGroupExtensions
{
    /// <summary>Reduces <paramref name="values"/> over all ranks (in float64, on the CPU or this group's device).</summary>
    /// <param name="group">The group.</param>
    /// <param name="values">This rank's values; the same count on every rank.</param>
    /// <param name="op">The reduction.</param>
    /// <param name="device">Where the group's tensors live (null: CPU).</param>
    /// <returns>The reduced values.</returns>
    public static double[] AllReduce(this IProcessGroup group, double[] values, ReduceOp op = ReduceOp.Sum, torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(values);
        if (group.WorldSize == 1) return [.. values];
        using var scope = torch.NewDisposeScope();
        torch.Tensor tensor = torch.tensor(values, torch.ScalarType.Float64);
        if (device is not null && device.type != DeviceType.CPU) tensor = tensor.to(device);
        group.AllReduce(tensor, op);
        return tensor.cpu().data<double>().ToArray();
    }

    /// <summary>Gathers every rank's bytes (any length) to every rank, in rank order.</summary>
    /// <param name="group">The group.</param>
    /// <param name="bytes">This rank's bytes.</param>
    /// <param name="device">Where the group's tensors live (null: CPU).</param>
    /// <returns>One array per rank.</returns>
    public static byte[][] AllGatherBytes(this IProcessGroup group, byte[] bytes, torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(bytes);
        if (group.WorldSize == 1) return [[.. bytes]];
        double[] lengths = new double[group.WorldSize];
        lengths[group.Rank] = bytes.Length;
        double[] all = group.AllReduce(lengths, ReduceOp.Sum, device);
        int longest = (int)all.Max();
        using var scope = torch.NewDisposeScope();
        byte[] padded = new byte[Math.Max(1, longest)];
        bytes.CopyTo(padded, 0);
        torch.Tensor mine = torch.tensor(padded);
        torch.Tensor gathered = torch.zeros((long)padded.Length * group.WorldSize, torch.ScalarType.Byte);
        if (device is not null && device.type != DeviceType.CPU)
        {
            mine = mine.to(device);
            gathered = gathered.to(device);
        }
        group.AllGather(mine, gathered);
        byte[] flat = gathered.cpu().data<byte>().ToArray();
        var result = new byte[group.WorldSize][];
        for (int r = 0; r < group.WorldSize; r++) result[r] = flat.AsSpan(r * padded.Length, (int)all[r]).ToArray();
        return result;
    }

    /// <summary>Whether any rank passes true (a stop request on one rank stops them all).</summary>
    /// <param name="group">The group.</param>
    /// <param name="value">This rank's flag.</param>
    /// <param name="device">Where the group's tensors live (null: CPU).</param>
    /// <returns>True when at least one rank passed true.</returns>
    public static bool AnyRank(this IProcessGroup group, bool value, torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(group);
        return group.WorldSize == 1 ? value : group.AllReduce([value ? 1.0 : 0.0], ReduceOp.Max, device)[0] > 0;
    }
}
