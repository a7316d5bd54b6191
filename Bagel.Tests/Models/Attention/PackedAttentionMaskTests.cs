using Bagel.Core.Batching;
using Bagel.Models.Attention;
using TorchSharp;

namespace Bagel.Tests.Models.Attention;

public sealed class PackedAttentionMaskTests
{
    private static readonly AttentionMode[] Modes = [AttentionMode.Causal, AttentionMode.Full, AttentionMode.Noise];

    [Fact]
    public void Text_noise_text_sample_hides_the_noisy_image_from_later_text()
    {
        // causal 2 | noise 2 | causal 1 : row = query, column = key.
        var sample = SampleLayout.FromSplits(new(2, AttentionMode.Causal), new(2, AttentionMode.Noise), new(1, AttentionMode.Causal));
        using var mask = AttentionMasks.BuildDense(sample, torch.CPU);
        bool[,] expected =
        {
            { true, false, false, false, false },
            { true, true, false, false, false },
            { true, true, true, true, false },
            { true, true, true, true, false },
            { true, true, false, false, true },
        };
        AssertMask(expected, mask);
    }

    [Fact]
    public void Every_three_split_mode_combination_matches_the_token_pair_rule()
    {
        foreach (AttentionMode a in Modes)
            foreach (AttentionMode b in Modes)
                foreach (AttentionMode c in Modes)
                {
                    var sample = SampleLayout.FromSplits(new(2, a), new(3, b), new(2, c));
                    using var mask = AttentionMasks.BuildDense(sample, torch.CPU);
                    AssertMask(NaivePackedAttention.DenseMask([sample]), mask);
                }
    }

    [Fact]
    public void Purely_causal_samples_carry_no_mask()
    {
        using var pack = PackedAttentionMask.Build(
            [SampleLayout.FromSplits(new(3, AttentionMode.Causal), new(2, AttentionMode.Causal)),
             SampleLayout.FromSplits(new(2, AttentionMode.Causal), new(2, AttentionMode.Full))], torch.CPU);
        Assert.Null(pack.MaskOf(0));
        Assert.NotNull(pack.MaskOf(1));
        Assert.Equal([5L, 4L], pack.SampleLengths);
        Assert.Equal(9, pack.TotalLength);
    }

    [Fact]
    public void A_sample_whose_splits_do_not_sum_to_its_length_is_rejected_with_its_index()
    {
        var good = SampleLayout.FromSplits(new AttentionSplit(2, AttentionMode.Causal));
        var bad = new SampleLayout(5, [new AttentionSplit(2, AttentionMode.Full)]);
        var error = Assert.Throws<ArgumentException>(() => PackedAttentionMask.Build([good, bad], torch.CPU));
        Assert.Contains("Sample 1", error.Message, StringComparison.Ordinal);
    }

    private static void AssertMask(bool[,] expected, torch.Tensor actual)
    {
        int n = expected.GetLength(0);
        Assert.Equal([n, n], actual.shape);
        for (int q = 0; q < n; q++)
            for (int k = 0; k < n; k++)
                Assert.True(expected[q, k] == actual[q, k].item<bool>(), $"query {q}, key {k}: expected {expected[q, k]}");
    }
}
