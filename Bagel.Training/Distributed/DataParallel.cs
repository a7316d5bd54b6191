using Bagel.Core.DataStatus;
using Bagel.Core.Distributed;
using Bagel.Models.Bagel;
using TorchSharp;

namespace Bagel.Training.Distributed;

/// <summary>What <see cref="DataParallel"/> does.</summary>
public sealed record DataParallelOptions
{
    /// <summary>The default bucket size: 25 MB, as PyTorch's DDP.</summary>
    public const long DefaultBucketBytes = 25L * 1024 * 1024;

    /// <summary>Gradients are all-reduced in flat buckets of at most this many bytes (a larger parameter gets its own). Default 25 MB.</summary>
    public long BucketBytes { get; init; } = DefaultBucketBytes;
}

/// <summary>
/// Data parallelism over an <see cref="IProcessGroup"/>, as the reference's FSDP run behaves for data: every rank holds
/// the whole model, rank 0's initial weights are broadcast, gradients are averaged over ranks after backward (in flat
/// buckets of <see cref="DataParallelOptions.BucketBytes"/>), the losses' token counts are all-reduced before backward
/// (<see cref="GlobalNormalizers"/>), and the logged figures are reduced as the reference logs them
/// (<see cref="ReduceStepFigures"/>). With a single-process group every call is a no-op.
/// </summary>
public sealed class DataParallel : IGradientSynchronizer, IDisposable
{
    private readonly torch.nn.Module _module;
    private readonly DataParallelOptions _options;
    private List<Bucket>? _buckets;

    /// <summary>Wraps <paramref name="module"/> for <paramref name="group"/>.</summary>
    /// <param name="group">The ranks.</param>
    /// <param name="module">The model every rank trains (its trainable parameters' gradients are averaged).</param>
    /// <param name="options">Bucket size (default 25 MB).</param>
    public DataParallel(IProcessGroup group, torch.nn.Module module, DataParallelOptions? options = null)
    {
        Group = group ?? throw new ArgumentNullException(nameof(group));
        _module = module ?? throw new ArgumentNullException(nameof(module));
        _options = options ?? new DataParallelOptions();
        if (_options.BucketBytes <= 0) throw new ArgumentOutOfRangeException(nameof(options), _options.BucketBytes, "BucketBytes must be positive.");
    }

    /// <summary>The ranks.</summary>
    public IProcessGroup Group { get; }

    /// <summary>Whether there is more than one rank.</summary>
    public bool IsDistributed => Group.WorldSize > 1;

    /// <summary>The number of gradient buckets (after the first <see cref="AllReduceGradients"/>).</summary>
    public int BucketCount => _buckets?.Count ?? 0;

    /// <summary>Copies rank 0's parameters and buffers of <paramref name="modules"/> to every rank (the model and its EMA copy at start).</summary>
    /// <param name="modules">The modules, the same structure on every rank.</param>
    public void BroadcastFromRankZero(params torch.nn.Module[] modules)
    {
        ArgumentNullException.ThrowIfNull(modules);
        if (!IsDistributed) return;
        using var noGrad = torch.no_grad();
        foreach (torch.nn.Module module in modules)
        {
            foreach (var (_, parameter) in module.named_parameters()) BroadcastInPlace(parameter);
            foreach (var (_, buffer) in module.named_buffers()) BroadcastInPlace(buffer);
        }
    }

    /// <summary>
    /// Averages every trainable parameter's gradient over the ranks (sum, then division by the world size), in flat
    /// buckets of one dtype and device, in parameter order. Call it after the last micro-batch's backward and before
    /// clipping. A parameter without a gradient is given a zero one first, so every rank reduces the same buffers.
    /// </summary>
    public void AllReduceGradients()
    {
        if (!IsDistributed) return;
        using var noGrad = torch.no_grad();
        _buckets ??= BuildBuckets();
        foreach (Bucket bucket in _buckets)
        {
            using var scope = torch.NewDisposeScope();
            long offset = 0;
            foreach (TorchSharp.Modules.Parameter parameter in bucket.Parameters)
            {
                long n = parameter.numel();
                torch.Tensor? grad = parameter.grad;
                if (grad is null)
                {
                    parameter.grad = torch.zeros_like(parameter);
                    grad = parameter.grad!;
                }
                bucket.Flat.narrow(0, offset, n).copy_(grad.reshape(-1));
                offset += n;
            }
            Group.AllReduce(bucket.Flat, ReduceOp.Avg);
            offset = 0;
            foreach (TorchSharp.Modules.Parameter parameter in bucket.Parameters)
            {
                long n = parameter.numel();
                parameter.grad!.copy_(bucket.Flat.narrow(0, offset, n).view(parameter.shape));
                offset += n;
            }
        }
    }

    /// <summary>Averages the gradients over the ranks: <see cref="AllReduceGradients"/>.</summary>
    public void SynchronizeGradients() => AllReduceGradients();

    /// <summary>
    /// The loss denominators over every rank (training.md 5.4): this rank's CE token count, MSE token count and CE
    /// weight sum, summed over the ranks in one all-reduce, with the world size.
    /// </summary>
    /// <param name="ceTokens">This rank's CE tokens of the micro-batch.</param>
    /// <param name="mseTokens">This rank's MSE tokens of the micro-batch.</param>
    /// <param name="ceWeightSum">This rank's CE weight sum (0 without reweighting).</param>
    /// <param name="device">Where the group's tensors live (null: CPU).</param>
    /// <returns>The normalizers for <c>BagelLoss.Reduce</c>.</returns>
    public LossNormalizers GlobalNormalizers(long ceTokens, long mseTokens, double ceWeightSum, torch.Device? device = null)
    {
        if (!IsDistributed) return new LossNormalizers(1, ceTokens, mseTokens, ceWeightSum);
        double[] sums = Group.AllReduce([ceTokens, mseTokens, ceWeightSum], ReduceOp.Sum, device);
        return new LossNormalizers(Group.WorldSize, (long)sums[0], (long)sums[1], sums[2]);
    }

    /// <summary>
    /// One all-reduce per step for the figures the reference reduces: the losses averaged over ranks (each rank's loss is
    /// already scaled by W / global count, so the mean is the global token mean), token, sample and loss-token counts
    /// summed, and a stop flag (any rank asking to stop stops all, after this step).
    /// </summary>
    /// <param name="figures">This rank's figures.</param>
    /// <param name="device">Where the group's tensors live (null: CPU).</param>
    /// <returns>The figures every rank agrees on.</returns>
    public StepFigureSums ReduceStepFigures(StepFigureSums figures, torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(figures);
        if (!IsDistributed) return figures;
        double w = Group.WorldSize;
        double[] s = Group.AllReduce([figures.Mse, figures.Ce, figures.Total, figures.CeTokens, figures.MseTokens, figures.Samples, figures.Tokens, figures.Stop ? 1 : 0], ReduceOp.Sum, device);
        return new StepFigureSums(s[0] / w, s[1] / w, s[2] / w, (long)s[3], (long)s[4], (long)s[5], (long)s[6], s[7] > 0);
    }

    /// <summary>Gathers every rank's data status (to every rank; rank 0 saves them as one document, one entry per rank).</summary>
    /// <param name="status">This rank's status, or null.</param>
    /// <param name="numWorkers">Workers per rank.</param>
    /// <returns>The document, or null when this rank has none.</returns>
    public DataStatusDocument? GatherDataStatus(RankDataStatus? status, int numWorkers)
    {
        if (status is null) return null;
        if (!IsDistributed) return new DataStatusDocument { WorldSize = 1, NumWorkers = numWorkers, Ranks = [status] };
        // The document's own JSON form carries one rank's entry through the byte all-gather.
        byte[] mine = System.Text.Encoding.UTF8.GetBytes(DataStatusFile.ToJson(new DataStatusDocument { WorldSize = 1, NumWorkers = numWorkers, Ranks = [status with { Rank = 0 }] }));
        byte[][] all = Group.AllGatherBytes(mine);
        var ranks = new RankDataStatus[all.Length];
        for (int r = 0; r < all.Length; r++) ranks[r] = DataStatusFile.FromJson(System.Text.Encoding.UTF8.GetString(all[r]), $"rank {r}'s data status").Ranks[0] with { Rank = r };
        return new DataStatusDocument { WorldSize = Group.WorldSize, NumWorkers = numWorkers, Ranks = ranks };
    }

    /// <summary>Releases the gradient buckets (not the group).</summary>
    public void Dispose()
    {
        if (_buckets is null) return;
        foreach (Bucket bucket in _buckets) bucket.Flat.Dispose();
        _buckets = null;
    }

    private void BroadcastInPlace(torch.Tensor tensor)
    {
        if (tensor.is_contiguous())
        {
            Group.Broadcast(tensor, 0);
            return;
        }
        using torch.Tensor copy = tensor.contiguous();
        Group.Broadcast(copy, 0);
        tensor.copy_(copy);
    }

    private List<Bucket> BuildBuckets()
    {
        var buckets = new List<Bucket>();
        var current = new List<TorchSharp.Modules.Parameter>();
        long bytes = 0;
        void Close()
        {
            if (current.Count == 0) return;
            TorchSharp.Modules.Parameter first = current[0];
            torch.Tensor flat = torch.zeros(current.Sum(p => p.numel()), first.dtype, first.device).DetachFromDisposeScope(); // lives as long as this object, whatever scope the first call runs in
            buckets.Add(new Bucket([.. current], flat));
            current = [];
            bytes = 0;
        }
        foreach (TorchSharp.Modules.Parameter parameter in _module.parameters().Where(p => p.requires_grad))
        {
            long size = parameter.numel() * parameter.element_size();
            if (current.Count > 0 && (current[0].dtype != parameter.dtype || current[0].device.ToString() != parameter.device.ToString() || bytes + size > _options.BucketBytes)) Close();
            current.Add(parameter);
            bytes += size;
        }
        Close();
        return buckets;
    }

    private sealed record Bucket(TorchSharp.Modules.Parameter[] Parameters, torch.Tensor Flat);
}

/// <summary>The figures of one step that ranks reduce together (see <see cref="DataParallel.ReduceStepFigures"/>).</summary>
/// <param name="Mse">MSE as logged.</param>
/// <param name="Ce">CE as logged.</param>
/// <param name="Total">The loss backward saw (summed over micro-batches).</param>
/// <param name="CeTokens">CE tokens.</param>
/// <param name="MseTokens">MSE tokens.</param>
/// <param name="Samples">Samples.</param>
/// <param name="Tokens">Packed tokens.</param>
/// <param name="Stop">Whether this rank (or, reduced, any rank) asks to stop after this step.</param>
public sealed record StepFigureSums(double Mse, double Ce, double Total, long CeTokens, long MseTokens, long Samples, long Tokens, bool Stop);
