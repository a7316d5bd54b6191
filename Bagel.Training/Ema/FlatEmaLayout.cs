using Bagel.Training.Optimization;
using TorchSharp;

namespace Bagel.Training.Ema;

/// <summary>
/// The EMA side of the fused update: the EMA tensors laid out end to end in one flat buffer per dtype and device
/// (tensor by tensor, so the layout never holds the EMA twice), and the runs of (EMA, live) pairs whose tensors lie end
/// to end in both, which <see cref="EmaUpdate"/> updates with one operation each.
/// </summary>
internal sealed class FlatEmaLayout : IDisposable
{
    private readonly List<torch.Tensor> _buffers;

    private FlatEmaLayout(List<torch.Tensor> buffers) => _buffers = buffers;

    /// <summary>The flat buffers (one per dtype and device), for tests and figures.</summary>
    public IReadOnlyList<torch.Tensor> Buffers => _buffers;

    /// <summary>
    /// Moves <paramref name="tensors"/> into new flat buffers, one per dtype and device, in their order, re-pointing
    /// each tensor at its slice (its old storage is released before the next one moves). With
    /// <paramref name="copyValues"/> false the slices start uninitialised (the caller fills them).
    /// </summary>
    public static FlatEmaLayout Create(IEnumerable<torch.Tensor> tensors, bool copyValues)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var buffers = new List<torch.Tensor>();
        using var noGrad = torch.no_grad();
        foreach (IGrouping<(torch.ScalarType, string), torch.Tensor> group in tensors.GroupBy(t => (t.dtype, t.device.ToString())))
        {
            torch.Tensor[] members = [.. group];
            long total = members.Sum(t => t.numel());
            if (total == 0) continue;
            torch.Tensor buffer = FlatLayout.NewBuffer(total, members[0], zeros: false);
            buffers.Add(buffer);
            long offset = 0;
            foreach (torch.Tensor tensor in members)
            {
                FlatLayout.MoveInto(tensor, buffer, offset, copyValues);
                offset += tensor.numel();
            }
        }
        FlatLayout.ReleaseFreedHeapPages();
        return new FlatEmaLayout(buffers);
    }

    /// <summary>
    /// Applies <paramref name="update"/> to each maximal run of consecutive pairs whose live parameter requires grad
    /// and whose EMA tensors, and live tensors, lie end to end in one storage each (same dtype and device): once on the
    /// whole run viewed as one flat tensor. A pair that starts no run with its neighbours is updated alone. Returns
    /// how many pairs were updated and how many operations it took.
    /// </summary>
    public static (int Tensors, int Runs) ForEachRun(IReadOnlyList<(torch.Tensor Ema, torch.Tensor Live)> pairs, Action<torch.Tensor, torch.Tensor> update)
    {
        int tensors = 0, runs = 0;
        int i = 0;
        while (i < pairs.Count)
        {
            (torch.Tensor ema, torch.Tensor live) = pairs[i];
            if (!live.requires_grad)
            {
                i++;
                continue;
            }
            int end = i + 1;
            long elements = ema.numel();
            bool joinable = ema.is_contiguous() && live.is_contiguous() && ema.numel() == live.numel();
            if (joinable)
            {
                while (end < pairs.Count && Follows(pairs[end], ema, live, elements))
                {
                    elements += pairs[end].Ema.numel();
                    end++;
                }
            }
            using (var scope = torch.NewDisposeScope())
            {
                if (end == i + 1)
                {
                    update(ema, live.detach());
                }
                else
                {
                    torch.Tensor emaRun = ema.as_strided([elements], [1], ema.storage_offset());
                    torch.Tensor liveRun = live.detach().as_strided([elements], [1], live.storage_offset());
                    update(emaRun, liveRun);
                }
            }
            tensors += end - i;
            runs++;
            i = end;
        }
        return (tensors, runs);
    }

    /// <summary>True when <paramref name="next"/> continues the run that starts at (<paramref name="ema"/>, <paramref name="live"/>) and holds <paramref name="elements"/> elements.</summary>
    private static bool Follows((torch.Tensor Ema, torch.Tensor Live) next, torch.Tensor ema, torch.Tensor live, long elements)
    {
        (torch.Tensor e, torch.Tensor l) = next;
        return l.requires_grad && e.numel() == l.numel() && e.dtype == ema.dtype && l.dtype == live.dtype &&
               e.device_type == ema.device_type && l.device_type == live.device_type &&
               e.storage_offset() == ema.storage_offset() + elements && l.storage_offset() == live.storage_offset() + elements &&
               e.is_contiguous() && l.is_contiguous() && FlatLayout.SameStorage(e, ema) && FlatLayout.SameStorage(l, live);
    }

    /// <summary>Disposes the buffers (the tensors that view them stay valid while they live: libtorch keeps the storage).</summary>
    public void Dispose()
    {
        foreach (torch.Tensor buffer in _buffers) buffer.Dispose();
    }
}
