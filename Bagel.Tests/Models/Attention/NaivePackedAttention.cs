using Bagel.Core.Batching;
using TorchSharp;

namespace Bagel.Tests.Models.Attention;

/// <summary>
/// A deliberately naive reference for packed attention: the rule of model.md §2.6 evaluated token pair by token pair
/// into one dense N x N mask over the whole pack, then plain softmax attention with an explicit kv-head lookup.
/// </summary>
internal static class NaivePackedAttention
{
    public static bool[,] DenseMask(IReadOnlyList<SampleLayout> samples)
    {
        var sample = new List<int>();
        var split = new List<int>();
        var mode = new List<AttentionMode>();
        int splitCounter = 0;
        for (int s = 0; s < samples.Count; s++)
            foreach (AttentionSplit part in samples[s].Splits)
            {
                for (int t = 0; t < part.Length; t++) { sample.Add(s); split.Add(splitCounter); mode.Add(part.Mode); }
                splitCounter++;
            }
        int n = sample.Count;
        var allowed = new bool[n, n];
        for (int q = 0; q < n; q++)
            for (int k = 0; k < n; k++)
            {
                bool sameSample = sample[q] == sample[k];
                bool sameSplit = split[q] == split[k];
                bool visible = k <= q || (sameSplit && mode[q] != AttentionMode.Causal);
                bool hiddenNoise = mode[k] == AttentionMode.Noise && !sameSplit;
                allowed[q, k] = sameSample && visible && !hiddenNoise;
            }
        return allowed;
    }

    /// <summary>q [N, heads, hd], k/v [N, kv, hd] → [N, heads·hd].</summary>
    public static torch.Tensor Attend(torch.Tensor q, torch.Tensor k, torch.Tensor v, bool[,] mask)
    {
        long n = q.shape[0], heads = q.shape[1], hd = q.shape[2], groups = heads / k.shape[1];
        var allowed = torch.tensor(mask);
        var outputs = new List<torch.Tensor>();
        for (long head = 0; head < heads; head++)
        {
            var qh = q.select(1, head);
            var kh = k.select(1, head / groups);
            var vh = v.select(1, head / groups);
            var scores = qh.matmul(kh.t()) / Math.Sqrt(hd);
            scores = scores.masked_fill(allowed.logical_not(), double.NegativeInfinity);
            outputs.Add(scores.softmax(-1).matmul(vh));
        }
        return torch.stack(outputs, 1).reshape(n, heads * hd);
    }
}
